"""Every setting of the inference service, read from ``RLOPS_SERVE_*`` environment variables."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rlops_core.errors import RlopsError

ENV_PREFIX = "RLOPS_SERVE_"
# A bearer token shorter than this is guessable; generate one with
# `python -c "import secrets; print(secrets.token_urlsafe(32))"`.
MIN_TOKEN_LENGTH = 8


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
    insecure_no_auth: bool = Field(
        default=False, description="allow listening beyond loopback without a token (local experiments only)"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="serve /metrics on this port only (same host), so a NetworkPolicy can keep it internal",
    )
    model_name: str | None = Field(default=None, description="defaults to '<algo>-<environment>'")
    model_version: str | None = Field(default=None, description="defaults to the checkpoint's hash (12 hex digits)")
    torch_threads: int = Field(default=1, ge=1, description="intra-op threads; 1 suits small MLPs best")
    graceful_timeout_s: float = Field(default=30.0, ge=0.0, description="how long shutdown waits for requests")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = False

    @model_validator(mode="after")
    def _secure_by_default(self) -> ServeSettings:
        # Nothing open by default: beyond loopback, anyone who can reach the port could act on the model.
        if self.auth_token is None and not self.insecure_no_auth and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without a token: set RLOPS_SERVE_AUTH_TOKEN, listen on "
                "127.0.0.1, or pass --insecure-no-auth (RLOPS_SERVE_INSECURE_NO_AUTH=1) for a local experiment"
            )
        if self.auth_token is not None and len(self.auth_token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"auth_token: use at least {MIN_TOKEN_LENGTH} characters")
        if self.metrics_port is not None and self.metrics_port != 0 and self.metrics_port == self.port:
            raise ValueError(f"metrics_port: {self.metrics_port} is already the API's port; pick another")
        return self

    @property
    def open_beyond_loopback(self) -> bool:
        """Listening where others can reach it with no token: allowed only through insecure_no_auth."""
        return self.auth_token is None and not is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


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
            if not name:  # a rule across settings (model validator): its message names what to change
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            problems.append(f"{ENV_PREFIX}{name.upper()} ({name}): {error['msg']}")
        raise RlopsError("invalid serve settings: " + "; ".join(problems)) from None
