"""Bearer-token authentication of the model routes."""

from __future__ import annotations

import hmac

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from ml.serve.errors import ServiceError


class BearerToken(HTTPBearer):
    """The bearer-token check of /v1/*; as an HTTPBearer it also declares the scheme in the OpenAPI schema."""

    def __init__(self, token: str) -> None:
        super().__init__(auto_error=False, description="the token set in RLOPS_SERVE_AUTH_TOKEN")
        self._expected = token.encode()

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        challenge = {"WWW-Authenticate": "Bearer"}
        credentials = await super().__call__(request)
        if credentials is None:
            message = "missing bearer token: send 'Authorization: Bearer <token>'"
            raise ServiceError(401, "unauthorized", message, "Authorization", challenge)
        # Constant-time comparison: response timing must not reveal how much of a guess was right.
        if not hmac.compare_digest(credentials.credentials.encode(), self._expected):
            raise ServiceError(401, "unauthorized", "invalid bearer token", "Authorization", challenge)
        return credentials
