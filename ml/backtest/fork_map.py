"""Map a function over a few items with one core each: the first item here, the others in forked children.

The sweep's chunks each make thousands of tiny GIL-releasing calls per second; in threads, handing the GIL
back and forth costs as much as the work. Forked children share the parent's memory copy-on-write (models and
prices are not pickled) and send back only their result. Where fork is unsafe or missing (not Linux), the
items run in threads instead, with the same results.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TypeVar

from rlops_core.errors import RlopsError

T = TypeVar("T")
R = TypeVar("R")


def split_evenly(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """`items` in at most `parts` consecutive chunks whose sizes differ by one at most: one per worker."""
    count = max(1, min(parts, len(items)))
    bounds = [round(i * len(items) / count) for i in range(count + 1)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def fork_available() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def fork_map(fn: Callable[[T], R], items: Sequence[T], use_fork: bool | None = None) -> list[R]:
    """`[fn(item) for item in items]`, the items in parallel: forked children (`use_fork` True, or None on
    Linux) or threads (False, or None elsewhere). A child's exception is raised here, with its
    traceback in the message; a child that dies without a word is an error naming its exit code."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    if use_fork and not fork_available():
        raise RlopsError(f"fork_map: forked workers need Linux's fork start method (this is {sys.platform})")
    if not (fork_available() if use_fork is None else use_fork):
        with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="fork-map") as pool:
            return list(pool.map(fn, items))
    context = multiprocessing.get_context("fork")
    children = []
    for index, item in enumerate(items[1:], start=1):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(fn, item, sender), name=f"fork-map-{index}", daemon=True)
        child.start()
        sender.close()  # the child holds its own copy: EOF reaches us if it dies
        children.append((child, receiver))
    results = [fn(items[0])]
    try:
        for index, (child, receiver) in enumerate(children, start=1):
            try:
                ok, payload = receiver.recv()
            except EOFError:
                child.join()
                raise RlopsError(f"parallel worker {index} died (exit code {child.exitcode})") from None
            if not ok:
                raise RlopsError(f"parallel worker {index} failed:\n{payload}")
            results.append(payload)
    finally:
        for child, receiver in children:
            receiver.close()
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
    return results


def _child(fn: Callable[[T], R], item: T, sender: Connection) -> None:
    try:
        result = fn(item)
    except BaseException:  # everything goes back to the parent, which raises it
        sender.send((False, traceback.format_exc()))
    else:
        sender.send((True, result))
    finally:
        sender.close()
