# Product reads. GET /api/product/{id} is a plain Starlette route on purpose: one upstream
# call whose bytes are passed through with processing_time_ms spliced in (docs/DESIGN.md's table).
from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.deps import ServicesDep, services_of
from gateway.clients.base import UpstreamError, UpstreamResponse
from gateway.context import current
from gateway.errors import ApiError, from_domain
from gateway.models import ErrorResponse, ProductBatch
from gateway.orders.domain import DependencyDown

log = logging.getLogger("gateway.products")
router = APIRouter(tags=["products"])
PRODUCT_ROUTE = "/api/product/{id}"
MAX_ID = 1_000_000_000
MAX_BATCH = 100
_DIGITS = re.compile(r"^[0-9]{1,19}$")
JSON = "application/json"


def parse_product_id(raw: str, field: str = "id") -> int:
    if not _DIGITS.match(raw):
        raise ApiError(
            "validation_failed",
            "product id must be an integer",
            [{"field": field, "message": "must be an integer"}],
        )
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise ApiError(
            "validation_failed",
            "product id is out of range",
            [{"field": field, "message": f"must be between 1 and {MAX_ID}"}],
        )
    return value


def splice_processing_time(body: bytes) -> bytes:
    """Appends processing_time_ms to a JSON object without parsing it."""
    end = body.rstrip()
    if not end.endswith(b"}") or len(end) < 2:
        raise UpstreamError("pricing", "unavailable", "answer is not a JSON object")
    ctx = current()
    ms = ctx.elapsed_ms() if ctx else 0.0
    sep = b"" if end[:-1].rstrip().endswith(b"{") else b","
    return b'%s%s"processing_time_ms":%s}' % (end[:-1], sep, repr(ms).encode())


def pricing_failure(resp: UpstreamResponse, product_id: int | None) -> ApiError:
    code = resp.error_code()
    if resp.status == 404 and product_id is not None:
        return ApiError("product_not_found", f"product {product_id} does not exist")
    if code == "deadline_exceeded":
        return ApiError("deadline_exceeded", "the request ran out of time")
    log.warning("pricing_unexpected", extra={"status": resp.status, "code": code})
    return ApiError("upstream_unavailable", "pricing service unavailable")


async def product_get(request: Request) -> Response:
    """GET /api/product/{id}: documented in OpenAPI by main.custom_openapi."""
    product_id = parse_product_id(request.path_params["id"])
    services = services_of(request)
    try:
        resp = await services.pricing.product_raw(product_id, request_deadline())
        if resp.status != 200:
            raise pricing_failure(resp, product_id)
        return Response(splice_processing_time(resp.body), media_type=JSON)
    except UpstreamError as exc:
        raise pricing_down(exc) from None


def request_deadline() -> float:
    ctx = current()
    assert ctx is not None  # the middleware made it
    return ctx.deadline


def pricing_down(exc: UpstreamError) -> ApiError:
    return from_domain(DependencyDown("pricing service", exc.kind, exc.retry_after))


def parse_ids(raw: str) -> list[int]:
    parts = [p.strip() for p in raw.split(",")]
    if not raw.strip() or any(p == "" for p in parts):
        raise ApiError(
            "validation_failed",
            "ids must be a comma-separated list of product ids",
            [{"field": "ids", "message": "must be a comma-separated list of integers"}],
        )
    if len(parts) > MAX_BATCH:
        raise ApiError(
            "validation_failed",
            f"at most {MAX_BATCH} ids per request",
            [{"field": "ids", "message": f"must hold 1 to {MAX_BATCH} ids"}],
        )
    ids = [parse_product_id(p, "ids") for p in parts]
    return list(dict.fromkeys(ids))  # duplicates asked once, order kept


@router.get(
    "/api/products",
    response_model=ProductBatch,
    summary="Several products in one call",
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def products_get(
    services: ServicesDep,
    ids: Annotated[
        str, Query(description="comma-separated product ids, 1 to 100", examples=["1,2,123"])
    ],
) -> Response:
    parsed = parse_ids(ids)
    try:
        resp = await services.pricing.products_raw(parsed, request_deadline())
        if resp.status != 200:
            raise pricing_failure(resp, None)
        return Response(splice_processing_time(resp.body), media_type=JSON)
    except UpstreamError as exc:
        raise pricing_down(exc) from None
