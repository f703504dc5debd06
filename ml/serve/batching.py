"""Micro-batching: observations of concurrent requests go through the network in one forward pass.

A forward pass of a small MLP costs about the same for 1 row as for 100, so under load most of the
throughput comes from coalescing. One worker task owns the queue: it takes the oldest request, waits at most
``max_wait`` (from that request's arrival) for others until ``max_batch`` observations are queued, runs the
batch on a single inference thread and hands each request its rows. While a batch runs, new requests queue
up for the next one, so under load batches form without any deliberate wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ml.serve.model import Inference
from rlops_core.errors import RlopsError


@dataclass
class _Pending:
    obs: NDArray[np.float32]
    future: asyncio.Future[Inference]
    arrived: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchStats:
    """One forward pass, as the metrics record it."""

    observations: int
    requests: int
    seconds: float


class MicroBatcher:
    """Coalesces concurrent :meth:`submit` calls into forward passes of at most ``max_batch`` observations.

    A single request larger than ``max_batch`` runs on its own rather than being split.
    """

    def __init__(
        self,
        infer: Callable[[NDArray[np.float32]], Inference],
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise RlopsError(f"micro-batcher needs max_batch >= 1 and max_wait >= 0, got {max_batch}, {max_wait_s}")
        self._infer = infer
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._queued_obs = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        # One thread: forward passes never overlap, and torch's per-thread state stays in one place.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlops-serve-infer")
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="rlops-serve-batcher")

    async def submit(self, obs: NDArray[np.float32]) -> Inference:
        """The outputs for ``obs`` (B, D), computed together with whatever else is queued."""
        if self._closing or self._worker is None:
            raise RlopsError("the model is not accepting requests (the server is starting or shutting down)")
        future: asyncio.Future[Inference] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(obs, future))
        self._queued_obs += len(obs)
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Finish what is queued, then stop the worker and the inference thread."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_more()
            batch = self._take()
            obs = batch[0].obs if len(batch) == 1 else np.concatenate([item.obs for item in batch])
            started = time.perf_counter()
            try:
                result = await loop.run_in_executor(self._executor, self._infer, obs)
            except Exception as exc:  # one bad batch fails its own requests, never the worker
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(BatchStats(len(obs), len(batch), time.perf_counter() - started))
            start = 0
            for item in batch:
                stop = start + len(item.obs)
                # A client that disconnected has a cancelled future; its rows are simply dropped.
                if not item.future.done():
                    item.future.set_result(result.rows(start, stop))
                start = stop

    async def _wait_for_more(self) -> None:
        if self._max_wait_s <= 0 or self._closing:
            return
        deadline = self._queue[0].arrived + self._max_wait_s
        while self._queued_obs < self._max_batch and not self._closing:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()

    def _take(self) -> list[_Pending]:
        batch = [self._queue.popleft()]
        size = len(batch[0].obs)
        while self._queue and size + len(self._queue[0].obs) <= self._max_batch:
            item = self._queue.popleft()
            batch.append(item)
            size += len(item.obs)
        self._queued_obs -= size
        return batch
