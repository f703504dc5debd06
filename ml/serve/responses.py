"""How the service answers what is not a result: every error as one JSON shape, request bodies parsed and their
faults named field by field, and FastAPI's and Starlette's own errors brought into the same shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml.serve.errors import ServiceError, invalid
from ml.serve.schemas import ErrorResponse, FieldError

logger = logging.getLogger("rlops.serve")
ACT_EXAMPLE = '{"observations": [[...], ...]}'
BARS_EXAMPLE = '{"bars": {"<symbol>": [{"timestamp": ..., "open": ...}, ...]}, "account": {"cash": ...}}'
Body = TypeVar("Body", bound=BaseModel)


def json_error(status: int, error: str, message: str, fields: Sequence[FieldError] = (), **kw: Any) -> JSONResponse:
    body = ErrorResponse(status=status, error=error, message=message, fields=list(fields))
    return JSONResponse(body.model_dump(), status_code=status, **kw)


def field_path(loc: Sequence[int | str]) -> str:
    """('body', 'observations', 0, 2) -> 'observations[0][2]'; a whole-body problem is just 'body'."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not parts:
        return "body"
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) or value is None:
        shown = repr(value)
        message += f" (got {shown if len(shown) <= 40 else shown[:37] + '...'})"
    return message


def validation_response(errors: Sequence[Any], example: str = ACT_EXAMPLE) -> JSONResponse:
    """422 naming every field at fault, or 400 when the body is not JSON at all."""
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            if error.get("loc") and isinstance(error["loc"][-1], int):  # FastAPI's parser gives a character offset
                reason = f"{reason} at character {error['loc'][-1]}"
            message = f"request body is not valid JSON: {reason}"
            return json_error(400, "malformed_json", message, [FieldError(field="body", message=message)])
    fields = []
    for error in errors:
        path = field_path(error.get("loc", ()))
        if path == "body" and error.get("type") in {"model_type", "model_attributes_type", "dict_type", "missing"}:
            text = f"the body must be a JSON object like {example}"
        else:
            text = describe(error)
        fields.append(FieldError(field=path, message=text))
    exc = invalid(fields)
    return json_error(422, exc.error, exc.message, exc.fields)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def parse_body(request: Request, schema: type[Body], example: str = ACT_EXAMPLE) -> Body | Response:
    """The body validated against `schema`, or the 400/422 response naming what is wrong (415 if not JSON)."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not is_json(content_type):
        message = f"the body must be JSON sent with 'Content-Type: application/json', not {content_type!r}"
        raise ServiceError(415, "unsupported_media_type", message, "Content-Type")
    try:
        return schema.model_validate_json(await request.body())
    except ValidationError as exc:
        return validation_response(exc.errors(include_url=False), example)


def add_error_handlers(app: FastAPI) -> None:
    """Every failure, ours or the framework's, answers in the one `ErrorResponse` shape."""

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return json_error(exc.status, exc.error, exc.message, exc.fields, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no route {request.url.path}; see /docs or /openapi.json for the API"
            return json_error(404, "not_found", message)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            return json_error(405, "method_not_allowed", message, headers=exc.headers)
        return json_error(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return json_error(500, "internal_error", f"internal error ({type(exc).__name__}); the server logged it")
