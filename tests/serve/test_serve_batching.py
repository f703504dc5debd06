"""The micro-batcher on its own: coalescing, size and wait limits, failures, draining on close."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from ml.serve.batching import BatchStats, MicroBatcher
from ml.serve.model import Inference
from rlops_core.errors import RlopsError


class RecordingModel:
    """Action = row sum, value = row index within the forward pass; remembers every batch size."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[int] = []
        self.fail_on = fail_on

    def __call__(self, obs: np.ndarray) -> Inference:
        self.batches.append(len(obs))
        if self.fail_on is not None and len(self.batches) == self.fail_on:
            raise ValueError("simulated forward-pass failure")
        return Inference(actions=obs.sum(axis=1), values=np.arange(len(obs), dtype=np.float32))


def rows(count: int, width: int = 3, start: float = 0.0) -> np.ndarray:
    return (start + np.arange(count * width, dtype=np.float32)).reshape(count, width)


async def submit_all(batcher: MicroBatcher, requests: list[np.ndarray]) -> list[Inference]:
    batcher.start()
    try:
        return list(await asyncio.gather(*(batcher.submit(obs) for obs in requests)))
    finally:
        await batcher.close()


def test_concurrent_requests_share_one_forward_pass_and_get_their_own_rows() -> None:
    model = RecordingModel()
    stats: list[BatchStats] = []
    requests = [rows(1, start=10 * i) for i in range(10)]
    results = asyncio.run(submit_all(MicroBatcher(model, 64, 0.2, stats.append), requests))
    assert model.batches == [10]
    assert [s.observations for s in stats] == [10] and stats[0].requests == 10
    for obs, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result.actions, obs.sum(axis=1))
    assert [float(r.values[0]) for r in results] == list(range(10))


def test_batches_never_exceed_max_batch_and_a_big_request_runs_alone() -> None:
    model = RecordingModel()
    requests = [rows(3, start=i) for i in range(10)] + [rows(20)]
    results = asyncio.run(submit_all(MicroBatcher(model, 8, 0.05), requests))
    assert sum(model.batches) == 50
    assert all(size <= 8 for size in model.batches if size != 20)
    assert 20 in model.batches
    for obs, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result.actions, obs.sum(axis=1))


def test_a_full_batch_does_not_wait_for_max_wait() -> None:
    model = RecordingModel()
    started = time.perf_counter()
    asyncio.run(submit_all(MicroBatcher(model, 4, 30.0), [rows(1) for _ in range(4)]))
    assert time.perf_counter() - started < 10
    assert model.batches == [4]


def test_a_failed_forward_pass_fails_its_requests_only() -> None:
    model = RecordingModel(fail_on=1)

    async def scenario() -> tuple[list[BaseException | Inference], Inference]:
        batcher = MicroBatcher(model, 64, 0.05)
        batcher.start()
        try:
            failed = await asyncio.gather(*(batcher.submit(rows(1)) for _ in range(3)), return_exceptions=True)
            return failed, await batcher.submit(rows(2))
        finally:
            await batcher.close()

    failed, later = asyncio.run(scenario())
    assert all(isinstance(item, ValueError) for item in failed)
    assert len(later.actions) == 2
    assert model.batches == [3, 2]


def test_close_drains_the_queue_then_refuses_new_work() -> None:
    model = RecordingModel()

    async def scenario() -> list[Inference]:
        batcher = MicroBatcher(model, 2, 0.0)
        batcher.start()
        pending = [asyncio.ensure_future(batcher.submit(rows(1))) for _ in range(5)]
        await asyncio.sleep(0)  # let every submit enqueue
        await batcher.close()
        with pytest.raises(RlopsError, match="not accepting requests"):
            await batcher.submit(rows(1))
        return [task.result() for task in pending]

    assert len(asyncio.run(scenario())) == 5
    assert sum(model.batches) == 5


def test_rejects_impossible_limits() -> None:
    with pytest.raises(RlopsError, match="max_batch >= 1"):
        MicroBatcher(RecordingModel(), 0, 0.0)
