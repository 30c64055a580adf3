# The storefront's routes (server-rendered HTML, outside the OpenAPI document): the product
# grid, a product page whose order form posts through the gateway's own order workflow
# (IdempotentOrders, as POST /api/order does) with an Idempotency-Key rendered into the form,
# the order lookup, the status page over /api/stats, and the static assets. Every bad input
# is a 4xx page; nothing here is on the /api/* read path.
from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from gateway.api.deps import Services, services_of
from gateway.api.routes.products import pricing_down, pricing_failure, request_deadline
from gateway.api.routes.stats import stats_get
from gateway.clients.base import UpstreamError
from gateway.context import current
from gateway.errors import ApiError
from gateway.headers import MalformedHeader, parse_idempotency_key
from gateway.web.site import SECURITY_HEADERS, message, site

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
MAX_ID = 1_000_000_000
MAX_ORDER_ID = 2**53
MAX_QUANTITY = 10_000
FORM = "application/x-www-form-urlencoded"
# The order form has two fields; anything much bigger is not our form.
MAX_FORM_FIELDS = 8
WEB_PREFIXES = ("/product/", "/orders", "/static/")
WEB_PATHS = frozenset({"/", "/status"})


def is_web_path(path: str) -> bool:
    return path in WEB_PATHS or path.startswith(WEB_PREFIXES)


def middleware_error_page(path: str, exc: ApiError) -> Response | None:
    """The HTML page for an error the middleware answers before routing (a rate limit, a
    too-large body, an oversized query string) on a storefront path; None elsewhere."""
    if not is_web_path(path):
        return None
    return site().error_page(exc)


def _bounded_int(raw: str | None, field: str, lo: int, hi: int, what: str) -> int:
    value = (raw or "").strip(" \t")
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(hi)):
        raise _invalid(field, f"{what} must be a whole number from {lo:,} to {hi:,}")
    number = int(value)
    if not lo <= number <= hi:
        raise _invalid(field, f"{what} must be a whole number from {lo:,} to {hi:,}")
    return number


def _invalid(field: str, text: str) -> ApiError:
    return ApiError("validation_failed", text, [{"field": field, "message": text}])


def _error_of(status: int, body: bytes, headers: dict[str, str]) -> ApiError:
    """An ApiError back from a shared-shape error answer of the order workflow."""
    try:
        err = orjson.loads(body)["error"]
        exc = ApiError(str(err["code"]), str(err["message"]), err.get("details"))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        exc = ApiError("internal_error", "internal error")
    exc.headers = dict(headers)
    exc.status = status
    return exc


def _new_key() -> str:
    return f"web-{secrets.token_urlsafe(18)}"


# --- the grid -------------------------------------------------------------------------


@router.get("/")
async def grid(request: Request) -> Response:
    s = site()
    query = request.query_params.get("q", "")
    if len(query) > 100:
        return s.error_page(_invalid("q", "a search is at most 100 characters"))
    try:
        number = _bounded_int(request.query_params.get("page", "1"), "page", 1, 10**6, "page")
    except ApiError as exc:
        return s.error_page(exc)
    page = s.catalog.page(s.catalog.search(query), number, PAGE_SIZE)
    products: list[dict[str, Any]] = []
    error: ApiError | None = None
    if page.ids:
        services = services_of(request)
        try:
            resp = await services.pricing.products_raw(page.ids, request_deadline())
            if resp.status != 200:
                raise pricing_failure(resp, None)
            products = resp.json()["products"]
        except UpstreamError as exc:
            error = pricing_down(exc)
        except ApiError as exc:
            error = exc
    for p in products:
        p["name"] = s.catalog.name(p["product_id"])
    return s.render(
        "grid.html",
        error.status if error else 200,
        products=products,
        page=page,
        query=query,
        error=error,
        message=message(error) if error else None,
    )


# --- a product and its order form -----------------------------------------------------


async def _product(services: Services, product_id: int) -> dict[str, Any]:
    try:
        resp = await services.pricing.product_raw(product_id, request_deadline())
    except UpstreamError as exc:
        raise pricing_down(exc) from None
    if resp.status != 200:
        raise pricing_failure(resp, product_id)
    data: dict[str, Any] = resp.json()
    return data


async def _product_page(
    request: Request,
    product_id: int,
    status: int = 200,
    error: ApiError | None = None,
    key: str | None = None,
    quantity: int = 1,
) -> Response:
    s = site()
    product: dict[str, Any] | None = None
    try:
        product = await _product(services_of(request), product_id)
    except ApiError as exc:
        if error is None:
            if exc.code == "product_not_found":
                return s.error_page(exc)
            status, error = exc.status, exc
    response = s.render(
        "product.html",
        status,
        product_id=product_id,
        name=s.catalog.name(product_id),
        product=product,
        error=error,
        message=message(error) if error else None,
        key=key or _new_key(),
        quantity=quantity,
        max_quantity=MAX_QUANTITY,
    )
    if error is not None:
        response.headers.update(error.headers)
    return response


@router.get("/product/{product_id}")
async def product_page(request: Request, product_id: str) -> Response:
    try:
        pid = _bounded_int(product_id, "id", 1, MAX_ID, "a product id")
    except ApiError as exc:
        return site().error_page(exc)
    return await _product_page(request, pid)


def _cross_site(request: Request) -> bool:
    """A form posted from another site (the browser says so, or the Origin is not ours)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


async def _read_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM:
        raise ApiError("unsupported_media_type", f"send the form as {FORM}")
    body = await request.body()  # the middleware bounds it by MAX_BODY_BYTES
    try:
        fields = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except ValueError:  # non-ASCII bytes, bad UTF-8 escapes, too many fields, no '='
        raise ApiError("malformed_request", "the form cannot be read") from None
    return dict(fields)


@router.post("/product/{product_id}/order")
async def order_post(request: Request, product_id: str) -> Response:
    s = site()
    try:
        pid = _bounded_int(product_id, "id", 1, MAX_ID, "a product id")
        if _cross_site(request):
            raise ApiError("forbidden", "orders are accepted from this shop's own pages only")
        form = await _read_form(request)
    except ApiError as exc:
        return s.error_page(exc)
    try:
        key = parse_idempotency_key(form.get("idempotency_key"))
    except MalformedHeader:
        key = None
    if key is None:
        # Not our form: never order without a key, or a resubmit could order twice.
        return await _product_page(
            request, pid, 422, _invalid("idempotency_key", "the order form is incomplete")
        )
    try:
        quantity = _bounded_int(form.get("quantity"), "quantity", 1, MAX_QUANTITY, "Quantity")
    except ApiError as exc:
        return await _product_page(request, pid, exc.status, exc, key)
    ctx = current()
    assert ctx is not None
    services = services_of(request)
    answer = await services.orders.place(pid, quantity, key, ctx.deadline, ctx.elapsed_ms)
    if answer.status == 201:
        order_id = orjson.loads(answer.body)["order_id"]
        # Post/redirect/get: a reload shows the order instead of sending the form again.
        return RedirectResponse(
            f"/orders/{int(order_id)}?placed=1", status_code=303, headers=SECURITY_HEADERS
        )
    error = _error_of(answer.status, answer.body, answer.headers)
    # A refusal is final for this key (kept 24 h), so the next try is a new intent; after a
    # 503 or 429 the same key retries the same intent and can never order twice.
    retry_same = error.status in (429, 503) or error.code == "request_in_progress"
    return await _product_page(
        request, pid, error.status, error, key if retry_same else None, quantity
    )


# --- orders ---------------------------------------------------------------------------


@router.get("/orders")
async def order_lookup(request: Request) -> Response:
    s = site()
    raw = request.query_params.get("id")
    if raw is None or not raw.strip():
        return s.render("lookup.html", order=None, error=None, message=None, order_id="")
    try:
        order_id = _bounded_int(raw, "id", 1, MAX_ORDER_ID, "An order number")
    except ApiError as exc:
        return s.render(
            "lookup.html", exc.status, order=None, error=exc, message=message(exc), order_id=""
        )
    return RedirectResponse(f"/orders/{order_id}", status_code=303, headers=SECURITY_HEADERS)


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str) -> Response:
    s = site()
    try:
        oid = _bounded_int(order_id, "id", 1, MAX_ORDER_ID, "An order number")
    except ApiError as exc:
        return s.render(
            "lookup.html", exc.status, order=None, error=exc, message=message(exc), order_id=""
        )
    ctx = current()
    assert ctx is not None
    answer = await services_of(request).orders.get(oid, ctx.deadline, ctx.elapsed_ms)
    if answer.status != 200:
        failure = _error_of(answer.status, answer.body, answer.headers)
        response = s.render(
            "lookup.html",
            failure.status,
            order=None,
            error=failure,
            message=message(failure),
            order_id=oid,
        )
        response.headers.update(failure.headers)
        return response
    order = orjson.loads(answer.body)
    order["name"] = s.catalog.name(order["product_id"])
    return s.render(
        "lookup.html",
        order=order,
        placed=request.query_params.get("placed") == "1",
        error=None,
        message=None,
        order_id=oid,
    )


# --- status ---------------------------------------------------------------------------


@router.get("/status")
async def status_page(request: Request) -> Response:
    services = services_of(request)
    stats = orjson.loads((await stats_get(services)).body)
    links = {
        name: url
        for name, url in (
            ("Grafana", services.settings.grafana_url),
            ("Prometheus", services.settings.prometheus_url),
        )
        if url
    }
    return site().render("status.html", stats=stats, links=links)


# --- assets ---------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(request: Request, name: str) -> Response:
    asset = site().assets.get(name)
    if asset is None:
        return site().error_page(ApiError("not_found", "no such file"))
    headers = {
        "etag": asset.etag,
        "cache-control": "public, max-age=300",
        "x-content-type-options": "nosniff",
        "cross-origin-resource-policy": "same-origin",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, headers=headers, media_type=asset.media_type)
