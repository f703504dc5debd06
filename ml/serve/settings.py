"""Every setting of the inference service, read from ``RLOPS_SERVE_*`` environment variables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rlops.errors import RlopsError

ENV_PREFIX = "RLOPS_SERVE_"


class ServeSettings(BaseSettings):
    """One typed place for the service's configuration; each field is also ``RLOPS_SERVE_<NAME>``."""

    # `protected_namespaces=()` because model_name / model_version are the natural names here.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", protected_namespaces=())

    checkpoint: str = Field(min_length=1, description="checkpoint to serve: a local path or an s3:// URL")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_batch: int = Field(default=256, ge=1, description="most observations one forward pass takes")
    # 0 by default: on CPU, batches form by themselves while the previous forward pass runs, and a deliberate
    # wait only added latency in the load benchmark (docs/serve.md); a GPU model may want a few ms.
    max_wait_ms: float = Field(
        default=0.0, ge=0.0, le=1000.0, description="how long a batch waits for more requests once it has one"
    )
    max_request_observations: int = Field(default=1024, ge=1, description="most observations one request may carry")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="larger request bodies get 413")
    auth_token: SecretStr | None = Field(
        default=None, description="when set, /v1/* requires 'Authorization: Bearer <token>'"
    )
    model_name: str | None = Field(default=None, description="defaults to '<algo>-<environment>'")
    model_version: str | None = Field(default=None, description="defaults to the checkpoint's hash (12 hex digits)")
    torch_threads: int = Field(default=1, ge=1, description="intra-op threads; 1 suits small MLPs best")
    graceful_timeout_s: float = Field(default=30.0, ge=0.0, description="how long shutdown waits for requests")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = False


def load_settings(**overrides: Any) -> ServeSettings:
    """Settings from the environment, with explicit (command-line) values taking precedence.

    ``None`` overrides are dropped so that an option the user did not give falls back to the environment.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return ServeSettings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name = ".".join(str(part) for part in error["loc"])
            problems.append(f"{ENV_PREFIX}{name.upper()} ({name}): {error['msg']}")
        raise RlopsError("invalid serve settings: " + "; ".join(problems)) from None
