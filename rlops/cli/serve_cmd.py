"""`rlops serve`: serve a trained policy over HTTP (the inference service of ml/serve)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="checkpoint file or s3:// URL [env RLOPS_SERVE_CHECKPOINT]"),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="address to listen on (default 127.0.0.1) [env RLOPS_SERVE_HOST]")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="port to listen on (default 8080) [env RLOPS_SERVE_PORT]")
    ] = None,
) -> None:
    """Serve a checkpoint's policy: POST /v1/act, GET /v1/model, /healthz, /readyz, /metrics.

    Every other setting (batching, auth token, body limit ...) comes from RLOPS_SERVE_* variables; see docs/serve.md.
    """
    from ml.serve.settings import load_settings  # FastAPI and torch load only when serving

    settings = load_settings(checkpoint=checkpoint, host=host, port=port)
    from ml.serve.server import run

    run(settings)
