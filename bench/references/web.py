"""What the three reference apps share at the HTTP edge: the error JSON of
services/contracts/errors.md, the admin check, health routes and the uvicorn settings."""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

STATUS = {
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
    "reservation_expired": 409,
    "reservation_released": 409,
    "reservation_committed": 409,
    "validation_failed": 422,
    "internal_error": 500,
}


class ApiError(Exception):
    """An error a client may see: a code of errors.md and a message written for it."""

    def __init__(self, code: str, message: str, details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def error_response(request: Request, exc: ApiError, headers: dict[str, str] | None = None):
    body: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "request_id": request_id(request),
    }
    if exc.details:
        body["details"] = exc.details
    return JSONResponse({"error": body}, status_code=STATUS[exc.code], headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query", "header")]
    return ".".join(parts) or "body"


def install_errors(app: FastAPI) -> None:
    """Every error of the app in the shared shape (validation 422, bad JSON 400, 404, 405)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(request, ApiError("malformed_request", "body is not valid JSON"))
        details = [{"field": _field(e["loc"]), "message": str(e["msg"])} for e in errors]
        return error_response(request, ApiError("validation_failed", "request is invalid", details))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            err = ApiError("method_not_allowed", "method not allowed on this route")
            return error_response(request, err, headers=dict(exc.headers or {}))
        if exc.status_code == 404:
            return error_response(request, ApiError("not_found", "no such route"))
        return error_response(request, ApiError("internal_error", "internal error"))


def check_admin(request: Request) -> None:
    """ADMIN_TOKEN unset -> admin routes are off (404); else Bearer token, 401/403."""
    token = os.environ.get("ADMIN_TOKEN", "")
    if not token:
        raise ApiError("not_found", "no such route")
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError("unauthorized", "admin route needs Authorization: Bearer <token>")
    if not secrets.compare_digest(header[7:].encode(), token.encode()):
        raise ApiError("forbidden", "wrong admin token")


def install_health(app: FastAPI, service: str) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service, "version": "reference"}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> dict[str, str]:
        return {"status": "ready"}


def rfc3339(at: datetime) -> str:
    """UTC, milliseconds, Z: 2026-11-23T10:00:00.000Z."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
