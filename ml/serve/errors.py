"""The error every route raises for an answer other than 200: status, stable code, message, fields at fault."""

from __future__ import annotations

from ml.serve.schemas import FieldError


class ServiceError(Exception):
    """An error answered as JSON with its status, code, message and (optionally) the fields at fault."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        fields: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers
        self.fields = fields if fields is not None else ([FieldError(field=field, message=message)] if field else [])


def invalid(problems: list[FieldError]) -> ServiceError:
    """A 422 naming every field at fault (the message shows the first five)."""
    shown = "; ".join(f"{item.field}: {item.message}" for item in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return ServiceError(422, "invalid_request", f"{shown}{more}", fields=problems)
