"""Connecting to GitHub: credentials (App installation token with narrowed permissions, or a fine-grained token),
a retry policy that never repeats a write GitHub may already have applied, and GitHub errors as one clear line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    from github import Github

# What the installation token is narrowed to: exactly what discover/report/merge use, nothing else.
APP_TOKEN_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "statuses": "write",
    "checks": "read",
    "vulnerability_alerts": "read",
}
SECRET_VARIABLES = ("PATCHBOT_APP_PRIVATE_KEY", "PATCHBOT_APP_PRIVATE_KEY_FILE", "PATCHBOT_TOKEN", "GITHUB_TOKEN")
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    app_id: str | None = None
    private_key: str | None = None
    installation_id: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        installation = env.get("PATCHBOT_INSTALLATION_ID")
        key = env.get("PATCHBOT_APP_PRIVATE_KEY") or None
        if key is None and (key_file := env.get("PATCHBOT_APP_PRIVATE_KEY_FILE")):
            try:
                key = Path(key_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise RlopsError(f"PATCHBOT_APP_PRIVATE_KEY_FILE: cannot read {key_file}: {exc.strerror}") from exc
        return cls(
            token=env.get("PATCHBOT_TOKEN") or env.get("GITHUB_TOKEN") or None,
            app_id=env.get("PATCHBOT_APP_ID") or None,
            private_key=key,
            installation_id=int(installation) if installation and installation.isdigit() else None,
        )

    @classmethod
    def take_from_environ(cls) -> Credentials:
        """Read the credentials, then remove them from this process's environment, so no child inherits them.

        (The kernel still shows a process's initial environment in /proc/<pid>/environ to its own user: that
        is what the sandbox's `user` and `namespace` levels close; see docs/patchbot.md.)
        """
        creds = cls.from_env(os.environ)
        for name in SECRET_VARIABLES:
            os.environ.pop(name, None)
        return creds


@dataclass
class Connection:
    github: Github
    token: str
    bot_login: str


def _retry(max_wait_s: float, total: int, backoff: float) -> Any:
    from github import GithubRetry

    class WriteSafeRetry(GithubRetry):
        """GithubRetry, except that a write is retried only after a rate-limit refusal.

        A 403/429 rate-limit answer means GitHub did not apply the request, so repeating it cannot double-post;
        a 5xx or a dropped connection after a POST may have been applied, so it is not repeated.
        """

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if method.upper() in _WRITES:
                # GithubRetry.increment still checks that a 403 really is a rate limit before retrying.
                return status_code in (403, 429) and bool(self.total)
            return bool(super().is_retry(method, status_code, has_retry_after))

        def _is_method_retryable(self, method: str) -> bool:
            return method.upper() not in _WRITES and bool(super()._is_method_retryable(method))

    return WriteSafeRetry(
        total=total,
        backoff_factor=backoff,
        max_rate_limit_wait=max_wait_s,
        secondary_rate_wait=min(60.0, max_wait_s),
        status_forcelist=[429, *range(500, 600)],
    )


def connect(
    creds: Credentials,
    repo_name: str,
    *,
    api_url: str,
    bot_login: str | None = None,
    max_rate_limit_wait_s: float = 120.0,
    retries: int = 4,
    backoff: float = 1.0,
    seconds_between_writes: float = 1.0,
) -> Connection:
    from github import Auth, Github, GithubIntegration

    retry = _retry(max_rate_limit_wait_s, retries, backoff)
    options: dict[str, Any] = {
        "base_url": api_url,
        "retry": retry,
        "seconds_between_writes": seconds_between_writes,
        "seconds_between_requests": min(0.25, seconds_between_writes),
    }
    if creds.app_id and creds.private_key:
        app_auth = Auth.AppAuth(creds.app_id, creds.private_key)
        with github_errors("authenticating as the GitHub App"):
            integration = GithubIntegration(auth=app_auth, **options)
            try:
                owner, name = repo_name.split("/", 1)
                installation_id = creds.installation_id or integration.get_repo_installation(owner, name).id
                login = bot_login or f"{integration.get_app().slug}[bot]"
            finally:
                integration.close()
            auth = app_auth.get_installation_auth(installation_id, token_permissions=APP_TOKEN_PERMISSIONS)
            gh = Github(auth=auth, **options)
            try:
                return Connection(gh, auth.token, login)
            except BaseException:
                gh.close()
                raise
    if not creds.token:
        raise RlopsError(
            "no GitHub credentials: set PATCHBOT_APP_ID and PATCHBOT_APP_PRIVATE_KEY (GitHub App) "
            "or PATCHBOT_TOKEN / GITHUB_TOKEN (fine-grained token)"
        )
    gh = Github(auth=Auth.Token(creds.token), **options)
    if bot_login is None:
        try:
            with github_errors("reading the token's user"):
                bot_login = gh.get_user().login
        except BaseException:
            gh.close()
            raise
    return Connection(gh, creds.token, bot_login)


def _reset_time(headers: Mapping[str, Any] | None) -> str:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if (reset := headers.get("x-ratelimit-reset")) and str(reset).isdigit():
        return "resets at " + datetime.fromtimestamp(int(reset), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if retry_after := headers.get("retry-after"):
        return f"retry after {retry_after} s"
    return "reset time unknown"


@contextmanager
def github_errors(action: str, repo_name: str | None = None) -> Iterator[None]:
    """Turn GitHub and transport failures during `action` into one RlopsError line naming what to do."""
    import requests
    from github import GithubException
    from github.GithubException import (
        BadCredentialsException,
        RateLimitExceededException,
        UnknownObjectException,
    )

    try:
        yield
    except BadCredentialsException as exc:
        raise RlopsError(
            f"{action}: GitHub rejected the credentials (401 {_message(exc)}); the token is revoked, expired or wrong"
        ) from exc
    except RateLimitExceededException as exc:
        raise RlopsError(
            f"{action}: GitHub rate limit exceeded ({exc.status}, {_reset_time(exc.headers)}); "
            "stopped before doing anything further"
        ) from exc
    except UnknownObjectException as exc:
        if repo_name:
            raise RlopsError(f"repository {repo_name} not found, or these credentials cannot see it (404)") from exc
        raise RlopsError(f"{action}: not found (404 {_message(exc)})") from exc
    except GithubException as exc:
        if exc.status == 429:
            raise RlopsError(
                f"{action}: GitHub rate limit exceeded (429, {_reset_time(exc.headers)}); "
                "stopped before doing anything further"
            ) from exc
        if exc.status == 403:
            raise RlopsError(
                f"{action}: forbidden (403 {_message(exc)}); the credentials lack a permission listed in "
                "docs/patchbot.md"
            ) from exc
        raise RlopsError(f"{action}: GitHub answered {exc.status} ({_message(exc)})") from exc
    except requests.exceptions.RetryError as exc:
        raise RlopsError(f"{action}: GitHub kept refusing after retries (rate limited or failing): {exc}") from exc
    except requests.exceptions.ConnectionError as exc:
        raise RlopsError(f"{action}: cannot reach GitHub: {exc}") from exc


def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(getattr(exc, "message", None) or "no message")
