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
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="serve /metrics on this port only [env RLOPS_SERVE_METRICS_PORT]"),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="allow a non-loopback --host without RLOPS_SERVE_AUTH_TOKEN (local experiments only; logs a warning)",
        ),
    ] = False,
) -> None:
    """Serve a checkpoint's policy: POST /v1/act and /v1/act/bars, GET /v1/model, /healthz, /readyz, /metrics.

    Listening beyond loopback needs RLOPS_SERVE_AUTH_TOKEN (or --insecure-no-auth). Every other setting
    (batching, body limit ...) comes from RLOPS_SERVE_* variables; see docs/serve.md.
    """
    from ml.serve.settings import load_settings  # FastAPI and torch load only when serving

    settings = load_settings(
        checkpoint=checkpoint,
        host=host,
        port=port,
        metrics_port=metrics_port,
        # An absent flag must not override RLOPS_SERVE_INSECURE_NO_AUTH.
        insecure_no_auth=True if insecure_no_auth else None,
    )
    from ml.serve.server import run

    run(settings)
