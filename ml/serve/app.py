"""The FastAPI app, assembled: life cycle, error handling, routes and middleware.

The model loads in the background after the server starts listening, so a liveness probe answers at once
while ``/readyz`` says 503 until the policy is in memory (an S3 download can take a while). A load failure
is reported through ``on_load_failure`` (the command line stops the server with the message).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

import rlops_core
from ml.serve.metrics import ServeMetrics
from ml.serve.middleware import BodyLimitMiddleware, MetricsMiddleware
from ml.serve.model import ModelInfo, load_model
from ml.serve.responses import add_error_handlers
from ml.serve.routes import RequestBodies, add_model_routes, add_probe_routes
from ml.serve.settings import ServeSettings
from ml.serve.state import Loader, ServiceState, lifespan

__all__ = ["Loader", "ServiceState", "create_app"]


def create_app(
    settings: ServeSettings,
    loader: Loader = load_model,
    on_load_failure: Callable[[str], None] | None = None,
    on_ready: Callable[[ModelInfo], None] | None = None,
) -> FastAPI:
    """An app serving ``settings.checkpoint``; ``loader`` is replaceable so tests can gate or break loading.

    ``on_ready`` runs once the checkpoint is loaded and accepted (the command line prints its banner then).
    """
    metrics = ServeMetrics()
    state = ServiceState(settings=settings, metrics=metrics)
    app = FastAPI(
        title="rlops inference",
        version=rlops_core.__version__,
        description="Actions, action distributions and value estimates of one trained rlops policy.",
        lifespan=lifespan(state, loader, on_load_failure, on_ready),
    )
    app.state.service = state
    add_error_handlers(app)
    bodies = RequestBodies()
    add_model_routes(app, state, bodies)
    add_probe_routes(app, state)
    bodies.install(app)
    # Added last = outermost: metrics see the 413s the body limit answers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: app.routes)
    return app
