# The FastAPI side of the shared error JSON: handlers that replace every FastAPI/Starlette
# default body ({"detail": ...}, plain 404s) with the shape of errors.py.
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.errors import ApiError, error_body, from_domain, validation_details
from gateway.orders.domain import OrderError


def error_response(exc: ApiError) -> Response:
    return Response(
        error_body(exc.code, exc.message, exc.details),
        status_code=exc.status,
        headers=exc.headers,
        media_type="application/json",
    )


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


async def _order_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrderError)
    return error_response(from_domain(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(OrderError, _order_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
