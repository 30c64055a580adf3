# Order routes: POST /api/order runs the saga behind Idempotency-Key; GET /api/order/{id}
# answers the stored order with its current status. Bodies are read and checked here so
# every bad input maps to the shared error codes (415, 400, 413, 422).
from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Request
from pydantic import ValidationError
from starlette.responses import Response

from gateway.api.deps import ServicesDep
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


_ORDER_BODY = {
    "required": True,
    "content": {JSON: {"schema": {"$ref": "#/components/schemas/OrderRequest"}}},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 415, 422, 503)
}


@router.post(
    "/api/order",
    status_code=201,
    response_model=Order,
    summary="Place an order (saga: reserve, price, store, commit)",
    openapi_extra={"requestBody": _ORDER_BODY},
    responses=_ERRORS,
)
async def order_post(
    request: Request,
    services: ServicesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1-128 printable ASCII; same key + same body replays the first answer"
            " for 24 h, same key + other body is 409 idempotency_conflict",
        ),
    ] = None,
) -> Response:
    key = check_idempotency_key(idempotency_key)
    req = await read_order_request(request)
    ctx = current()
    assert ctx is not None  # the middleware made it
    answer = await services.orders.place(
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
