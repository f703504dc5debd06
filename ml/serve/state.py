"""The service's life cycle: loading, ready, failed or stopping, with the model loaded in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from fastapi import FastAPI

from ml.serve.batching import MicroBatcher
from ml.serve.errors import ServiceError
from ml.serve.metrics import ServeMetrics
from ml.serve.model import ModelInfo, ServedModel
from ml.serve.settings import ServeSettings
from rlops_core.errors import RlopsError

logger = logging.getLogger("rlops.serve")

Loader = Callable[[ServeSettings], ServedModel]


@dataclass
class ServiceState:
    settings: ServeSettings
    metrics: ServeMetrics
    status: Literal["loading", "ready", "failed", "stopping"] = "loading"
    model: ServedModel | None = None
    batcher: MicroBatcher | None = None
    load_error: str | None = None
    _load_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def require_ready(self) -> tuple[ServedModel, MicroBatcher]:
        if self.status == "ready" and self.model is not None and self.batcher is not None:
            return self.model, self.batcher
        raise ServiceError(503, "not_ready", self.not_ready_reason(), headers={"Retry-After": "1"})

    def not_ready_reason(self) -> str:
        if self.status == "failed":
            return f"the model failed to load: {self.load_error}"
        if self.status == "stopping":
            return "the server is shutting down; retry on another replica"
        return f"the model is still loading from {self.settings.checkpoint}; retry shortly"


async def load_in_background(
    state: ServiceState,
    loader: Loader,
    on_load_failure: Callable[[str], None] | None,
    on_ready: Callable[[ModelInfo], None] | None,
) -> None:
    settings = state.settings
    try:
        model = await asyncio.to_thread(loader, settings)
    except RlopsError as exc:
        state.load_error = str(exc)
    except Exception as exc:  # anything else is a bug or an environment problem; keep the service answering
        logger.exception("loading %s failed", settings.checkpoint)
        state.load_error = f"{type(exc).__name__}: {exc}"
    else:
        batcher = MicroBatcher(
            model.infer, settings.max_batch, settings.max_wait_ms / 1000, state.metrics.observe_batch
        )
        batcher.start()
        state.model, state.batcher = model, batcher
        state.metrics.model_loaded(model.info)
        state.status = "ready"
        if on_ready is not None:
            on_ready(model.info)
        return
    state.status = "failed"
    logger.error("cannot serve: %s", state.load_error)
    if on_load_failure is not None:
        on_load_failure(state.load_error or "unknown error")


def lifespan(
    state: ServiceState,
    loader: Loader,
    on_load_failure: Callable[[str], None] | None,
    on_ready: Callable[[ModelInfo], None] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start loading once the server listens (so liveness answers at once); on shutdown stop the load and drain
    the batcher."""

    @asynccontextmanager
    async def running(_: FastAPI) -> AsyncIterator[None]:
        state._load_task = asyncio.create_task(load_in_background(state, loader, on_load_failure, on_ready))
        try:
            yield
        finally:
            if state.status != "failed":
                state.status = "stopping"
            state.metrics.ready.set(0)
            if not state._load_task.done():
                state._load_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state._load_task
            if state.batcher is not None:
                await state.batcher.close()

    return running
