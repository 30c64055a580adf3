# Order routes: POST /api/order runs the saga behind Idempotency-Key; GET /api/order/{id}
# answers the stored order with its current status. Bodies are read and checked here so
# every bad input maps to the shared error codes (415, 400, 413, 422).
from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import ValidationError
from starlette.responses import Response

from gateway.api.deps import ServicesDep, services_of
from gateway.context import current
from gateway.errors import ApiError, validation_details
from gateway.headers import (
    IDEMPOTENCY_KEY,
    MalformedHeader,
    is_json_content_type,
    parse_idempotency_key,
)
from gateway.models import ErrorResponse, Order, OrderRequest

router = APIRouter(tags=["orders"])
JSON = "application/json"
MAX_ORDER_ID = 2**53


def check_idempotency_key(key: str | None) -> str | None:
    """The trimmed key, None when absent; 422 validation_failed naming the header else."""
    try:
        return parse_idempotency_key(key)
    except MalformedHeader as exc:
        raise ApiError(
            "validation_failed",
            "Idempotency-Key is invalid",
            [{"field": IDEMPOTENCY_KEY, "message": exc.message}],
        ) from None


async def read_order_request(request: Request) -> OrderRequest:
    if not is_json_content_type(request.headers.get("content-type")):
        raise ApiError(
            "unsupported_media_type", "send the body as application/json (charset utf-8)"
        )
    # The middleware's receive() raises once MAX_BODY_BYTES is passed, before the rest is read.
    body = await request.body()
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError("malformed_request", "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(
            "validation_failed",
            "request body must be a JSON object",
            [{"field": "body", "message": "must be a JSON object"}],
        )
    try:
        return OrderRequest.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            "validation_failed", "request is invalid", validation_details(exc.errors())
        ) from None


# POST /api/order is a plain Starlette route (like GET /api/product/{id}): FastAPI's
# dependency solving cost ~110 µs of the order's CPU (profiled, docs/ARCHITECTURE.md), and
# the body and header are checked by hand above anyway. Its OpenAPI operation, written out:
ORDER_ROUTE = "/api/order"
_IDEMPOTENCY_DOC = (
    "1-128 printable ASCII; same key + same body replays the first answer for 24 h, same key"
    " + other body is 409 idempotency_conflict"
)
_STATUS_NAMES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    503: "Service Unavailable",
}
ORDER_POST_OPERATION: dict[str, Any] = {
    "tags": ["orders"],
    "summary": "Place an order (saga: reserve, price, store, commit)",
    "operationId": "order_post_api_order_post",
    "parameters": [
        {
            "name": IDEMPOTENCY_KEY,
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": _IDEMPOTENCY_DOC,
                "title": IDEMPOTENCY_KEY,
            },
            "description": _IDEMPOTENCY_DOC,
        }
    ],
    "responses": {
        "201": {
            "description": "Successful Response",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Order"}}},
        },
        **{
            str(code): {
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                "description": name,
            }
            for code, name in _STATUS_NAMES.items()
        },
    },
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/OrderRequest"}}},
    },
}


async def order_post(request: Request) -> Response:
    """POST /api/order: documented by ORDER_POST_OPERATION."""
    key = check_idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    req = await read_order_request(request)
    ctx = current()
    assert ctx is not None  # the middleware made it
    answer = await services_of(request).orders.place(
        req.product_id, req.quantity, key, ctx.deadline, ctx.elapsed_ms
    )
    return Response(answer.body, status_code=answer.status, headers=answer.headers, media_type=JSON)


@router.get(
    "/api/order/{order_id}",
    response_model=Order,
    summary="An order with its current status",
    responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
async def order_get(
    services: ServicesDep,
    order_id: Annotated[int, Path(ge=1, le=MAX_ORDER_ID)],
) -> Response:
    ctx = current()
    assert ctx is not None
    answer = await services.orders.get(order_id, ctx.deadline, ctx.elapsed_ms)
    return Response(answer.body, status_code=answer.status, headers=answer.headers, media_type=JSON)
