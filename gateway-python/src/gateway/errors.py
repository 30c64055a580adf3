# The shared error JSON (services/contracts/errors.md): the closed code table, ApiError, and
# the handlers that replace every FastAPI/Starlette default body ({"detail": ...}, plain 404s).
from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.context import current

# code -> HTTP status; a unit test keeps this equal to the table in errors.md.
CODES: dict[str, int] = {
    "malformed_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "product_not_found": 404,
    "order_not_found": 404,
    "reservation_not_found": 404,
    "method_not_allowed": 405,
    "insufficient_stock": 409,
    "idempotency_conflict": 409,
    "request_in_progress": 409,
    "reservation_expired": 409,
    "reservation_not_pending": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_failed": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "fault_injected": 500,
    "upstream_unavailable": 503,
    "overloaded": 503,
    "deadline_exceeded": 503,
}


class ApiError(Exception):
    """An error answer in the shared shape; raise it anywhere below a route."""

    def __init__(
        self,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = CODES[code]
        self.message = message
        self.details = details
        self.headers = dict(headers or {})
        if retry_after is None and self.status in (429, 503):
            retry_after = 1
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, retry_after))


def error_body(code: str, message: str, details: list[dict[str, str]] | None = None) -> bytes:
    ctx = current()
    err: dict[str, Any] = {
        "code": code,
        "message": message,
        "request_id": ctx.request_id if ctx else "",
    }
    if details:
        err["details"] = details
    return orjson.dumps({"error": err})


def error_response(exc: ApiError) -> Response:
    return Response(
        error_body(exc.code, exc.message, exc.details),
        status_code=exc.status,
        headers=exc.headers,
        media_type="application/json",
    )


def _field_of(loc: tuple[int | str, ...]) -> str:
    # ("body", "quantity") -> "quantity"; ("query", "ids") -> "ids"; ("path", "order_id")...
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(errors: Any) -> list[dict[str, str]]:
    return [{"field": _field_of(tuple(e.get("loc", ()))), "message": e["msg"]} for e in errors]


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(ApiError("malformed_request", "request body is not valid JSON"))
    return error_response(
        ApiError("validation_failed", "request is invalid", validation_details(errors))
    )


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return error_response(ApiError("not_found", "no such route"))
    if exc.status_code == 405:
        return error_response(
            ApiError("method_not_allowed", "method not allowed on this route", headers=headers)
        )
    if exc.status_code == 400:
        return error_response(ApiError("malformed_request", "request cannot be parsed"))
    if exc.status_code == 413:
        return error_response(ApiError("payload_too_large", "request body is too large"))
    if exc.status_code == 415:
        return error_response(ApiError("unsupported_media_type", "send application/json"))
    return error_response(ApiError("internal_error", "internal error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
