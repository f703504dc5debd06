"""fork_map: results in order from forked children or threads, a child's error or death raised in the parent."""

from __future__ import annotations

import os

import pytest

import ml.backtest.fork_map as fork_map_module
from ml.backtest.fork_map import fork_map, split_evenly
from rlops_core.errors import RlopsError


def square_with_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def test_items_after_the_first_run_in_other_processes() -> None:
    results = fork_map(square_with_pid, [1, 2, 3], use_fork=True)
    assert [value for value, _ in results] == [1, 4, 9]
    pids = [pid for _, pid in results]
    assert pids[0] == os.getpid()
    assert len(set(pids)) == 3


def test_threads_give_the_same_results() -> None:
    results = fork_map(square_with_pid, [1, 2, 3], use_fork=False)
    assert [value for value, _ in results] == [1, 4, 9]
    assert {pid for _, pid in results} == {os.getpid()}


def fail_on_two(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad item {x}")
    return x


def die_on_two(x: int) -> int:
    if x == 2:
        os._exit(7)
    return x


def test_a_child_error_is_raised_with_its_traceback() -> None:
    with pytest.raises(RlopsError, match=r"(?s)parallel worker 1 failed.*ValueError: bad item 2"):
        fork_map(fail_on_two, [1, 2], use_fork=True)


def test_a_child_that_dies_is_an_error_naming_its_exit_code() -> None:
    with pytest.raises(RlopsError, match="parallel worker 1 died \\(exit code 7\\)"):
        fork_map(die_on_two, [1, 2], use_fork=True)


def test_a_thread_error_propagates() -> None:
    with pytest.raises(ValueError, match="bad item 2"):
        fork_map(fail_on_two, [1, 2], use_fork=False)


def test_forking_where_fork_is_unavailable_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fork_map_module, "fork_available", lambda: False)
    with pytest.raises(RlopsError, match="forked workers need Linux's fork start method"):
        fork_map(square_with_pid, [1, 2], use_fork=True)
    assert [value for value, _ in fork_map(square_with_pid, [1, 2])] == [1, 4]  # default: threads there


@pytest.mark.parametrize(("count", "parts"), [(0, 2), (1, 2), (5, 2), (600, 2), (7, 3), (3, 8)])
def test_split_evenly_keeps_every_item_in_order_in_near_equal_chunks(count: int, parts: int) -> None:
    items = list(range(count))
    chunks = split_evenly(items, parts)
    assert [item for chunk in chunks for item in chunk] == items
    assert len(chunks) == max(1, min(parts, count))
    sizes = [len(chunk) for chunk in chunks]
    assert max(sizes) - min(sizes) <= 1
