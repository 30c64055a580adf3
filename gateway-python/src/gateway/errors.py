# The shared error JSON (services/contracts/errors.md): the closed code table, ApiError, the
# error body, and the ONE table that maps the order workflow's domain errors to codes. No web
# framework here: the FastAPI handlers that use it live in api/errors.py.
from __future__ import annotations

from typing import Any

import orjson

from gateway.context import current
from gateway.orders import domain

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
    "reservation_released": 409,
    "reservation_committed": 409,
    "payload_too_large": 413,
    "misdirected_request": 421,
    "unsupported_media_type": 415,
    "validation_failed": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "fault_injected": 500,
    "upstream_unavailable": 503,
    "overloaded": 503,
    "product_moving": 503,
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


def _field_of(loc: tuple[int | str, ...]) -> str:
    # ("body", "quantity") -> "quantity"; ("query", "ids") -> "ids"; ("path", "order_id")...
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(errors: Any) -> list[dict[str, str]]:
    return [{"field": _field_of(tuple(e.get("loc", ()))), "message": e["msg"]} for e in errors]


_DEPENDENCY_CODES = {
    "unavailable": "upstream_unavailable",
    "overloaded": "overloaded",
    "deadline": "deadline_exceeded",
}


def from_domain(exc: domain.OrderError) -> ApiError:
    """The one table from the order workflow's failures to the shared error codes."""
    match exc:
        case domain.OutOfStock():
            return ApiError(
                "insufficient_stock", f"not enough units of product {exc.product_id} available"
            )
        case domain.UnknownProduct():
            return ApiError("product_not_found", f"product {exc.product_id} does not exist")
        case domain.HoldExpired():
            return ApiError(
                "reservation_expired", "the stock hold expired before the order completed"
            )
        case domain.IdempotencyConflict():
            return ApiError(
                "idempotency_conflict",
                "this Idempotency-Key was used with a different request body",
            )
        case domain.RequestInProgress():
            return ApiError(
                "request_in_progress",
                "a request with this Idempotency-Key is still running; retry later",
            )
        case domain.UnknownOrder():
            return ApiError("order_not_found", f"order {exc.order_id} does not exist")
        case domain.DependencyDown():
            code = _DEPENDENCY_CODES[exc.kind]
            if exc.kind == "deadline":
                return ApiError(code, "the request ran out of time")
            if exc.kind == "overloaded":
                return ApiError(code, "the gateway is overloaded; retry later")
            return ApiError(code, f"{exc.dependency} unavailable", retry_after=exc.retry_after)
    return ApiError("internal_error", "internal error")
