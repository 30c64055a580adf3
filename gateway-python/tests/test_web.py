# The storefront (gateway/web): rendering and escaping, the order form through the real order
# workflow (idempotent, every error code a human page with the right status), bad input as 4xx
# pages, the security headers, page weight (< 100 kB with its assets) and no external URL.
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import CODES
from gateway.web import pages
from gateway.web.catalog import Catalog
from gateway.web.site import CSP, MESSAGES, format_stat

from conftest import FakeInventory, Gateway
from test_products import assert_error

WEB = Path(pages.__file__).parent
FORM = {"content-type": "application/x-www-form-urlencoded"}
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


class Page(HTMLParser):
    """The bits of a page the tests look at: text, hidden key, local asset links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.inputs: dict[str, str] = {}
        self.assets: list[str] = []
        self.h1 = 0
        self.lang = ""
        self.labels: set[str] = set()
        self.fields: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "h1":
            self.h1 += 1
        if tag == "input":
            self.inputs[a.get("name", "")] = a.get("value", "")
            if a.get("type") != "hidden":
                self.fields.add(a.get("id", ""))
        if tag == "label":
            self.labels.add(a.get("for", ""))
        for attr in ("href", "src"):
            if tag in ("link", "script") and a.get(attr):
                self.assets.append(a[attr])

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def content(self) -> str:
        return " ".join(" ".join(self.text).split())


def page(resp: Any, status: int = 200) -> Page:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.headers["content-security-policy"] == CSP
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    parsed = Page(resp.text)
    assert parsed.lang == "en" and parsed.h1 == 1
    assert parsed.fields <= parsed.labels, "every visible input has a label"
    return parsed


async def order_form(gw: Gateway, product_id: int = 123) -> str:
    """A product page's order form key, as a browser would get it."""
    return page(await gw.client.get(f"/product/{product_id}")).inputs["idempotency_key"]


async def post_order(gw: Gateway, product_id: int, body: str, **headers: str) -> Any:
    return await gw.client.post(
        f"/product/{product_id}/order", content=body.encode(), headers=FORM | headers
    )


# --- grid and search ----------------------------------------------------------------------


async def test_grid_pages_over_the_catalog_with_live_prices(gw: Gateway) -> None:
    # The fake pricing knows 7 and 123; page 7 of the 1,000-product catalog holds 121..140.
    p = page(await gw.client.get("/?page=7"))
    assert "Classic Jacket 123" in p.content and "$164.35" in p.content
    assert "basic (5.0 % off)" in p.content and "223 in WH-4" in p.content
    assert "page 7 of 50" in p.content
    assert 'href="/?page=8"' in (await gw.client.get("/?page=7")).text
    beyond = page(await gw.client.get("/?page=999"))  # past the end: the last page
    assert "page 50 of 50" in beyond.content


async def test_search_by_id_and_by_name(gw: Gateway) -> None:
    by_id = page(await gw.client.get("/", params={"q": "123"}))
    assert "Classic Jacket 123" in by_id.content and "1 product match" in by_id.content
    by_name = page(await gw.client.get("/", params={"q": "JACKET 123"}))
    assert "Classic Jacket 123" in by_name.content
    none = page(await gw.client.get("/", params={"q": "no such thing"}))
    assert "0 products match" in none.content


def test_catalog_search_and_paging() -> None:
    cat = Catalog({1: "Red Tent", 2: "Blue Tent", 3: "Red Lamp"})
    assert cat.search("red") == [1, 3]
    assert cat.search(" tent  BLUE ") == [2]
    assert cat.search("77") == [77]  # any id in range, known to the catalog or not
    assert cat.search("0") == [] and cat.search("99999999999") == []
    assert cat.search("") == [1, 2, 3]
    assert Catalog.page([1, 2, 3], 2, 2).ids == [3]
    assert Catalog.page([], 1, 20).pages == 1
    assert cat.name(9) == "Product 9"
    assert Catalog.load([Path("/nonexistent/products.json")]).ids == []


@pytest.mark.parametrize(
    "query",
    ["page=abc", "page=0", "page=-1", "page=1.5", "page=99999999999999", "page=%00", "page=%ff",
     "q=" + "x" * 101],
)  # fmt: skip
async def test_junk_query_strings_are_4xx_pages(gw: Gateway, query: str) -> None:
    p = page(await gw.client.get(f"/?{query}"), 422)
    assert "Check your input" in p.content


async def test_search_terms_are_escaped(gw: Gateway) -> None:
    resp = await gw.client.get("/", params={"q": '<script>alert("x")</script>'})
    page(resp)
    assert "<script>alert" not in resp.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in resp.text


async def test_grid_and_product_with_pricing_down_are_503_pages(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(pricing_url="http://127.0.0.1:1")  # refused
    assert "A service is down" in page(await gw.client.get("/?q=123"), 503).content
    resp = await gw.client.get("/product/123")
    assert "A service is down" in page(resp, 503).content
    assert int(resp.headers["retry-after"]) >= 1


# --- product page and order form -----------------------------------------------------------


async def test_product_page_shows_live_price_stock_and_a_fresh_key(gw: Gateway) -> None:
    p = page(await gw.client.get("/product/123"))
    assert "Classic Jacket 123" in p.content and "$164.35" in p.content and "$173.00" in p.content
    assert "223 in WH-4" in p.content
    assert p.inputs["quantity"] == "1"
    assert p.inputs["idempotency_key"] != await order_form(gw)  # one key per render


@pytest.mark.parametrize(
    ("raw", "status"),
    [("abc", 422), ("0", 422), ("1000000001", 422), ("9" * 40, 422), ("%00", 422),
     ("%C3%A9", 422), ("12a", 422), ("-5", 422), ("5", 404)],
)  # fmt: skip
async def test_bad_product_ids_are_4xx_pages(gw: Gateway, raw: str, status: int) -> None:
    page(await gw.client.get(f"/product/{raw}"), status)


async def test_an_order_confirms_and_a_resubmit_orders_nothing_twice(
    gw: Gateway, fake_inventory: FakeInventory
) -> None:
    key = await order_form(gw)
    first = await post_order(gw, 123, f"quantity=2&idempotency_key={key}")
    assert first.status_code == 303
    location = first.headers["location"]
    assert re.fullmatch(r"/orders/[0-9]+\?placed=1", location)
    again = await post_order(gw, 123, f"quantity=2&idempotency_key={key}")  # double submit
    assert again.status_code == 303 and again.headers["location"] == location
    assert len(fake_inventory.actions("reserve")) == 1
    assert fake_inventory.stock[123] == 221
    confirmed = page(await gw.client.get(location))
    assert "Thank you: order confirmed" in confirmed.content
    assert "$164.35" in confirmed.content and "$328.70" in confirmed.content
    assert "RES-" in confirmed.content
    # The same form sent with another quantity is not a new order either.
    other = page(await post_order(gw, 123, f"quantity=3&idempotency_key={key}"), 409)
    assert "Form already used" in other.content
    assert len(fake_inventory.actions("reserve")) == 1
    assert other.inputs["idempotency_key"] != key  # the next try is a new intent


async def test_out_of_stock_is_a_409_page_with_a_new_key(gw: Gateway) -> None:
    key = await order_form(gw, 7)  # 3 units
    p = page(await post_order(gw, 7, f"quantity=5&idempotency_key={key}"), 409)
    assert "Out of stock" in p.content and "Choose fewer units" in p.content
    assert p.inputs["quantity"] == "5" and p.inputs["idempotency_key"] != key


async def test_inventory_down_is_a_503_page_that_retries_the_same_intent(
    gw: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.fail["reserve"] = 503
    key = await order_form(gw)
    resp = await post_order(gw, 123, f"quantity=1&idempotency_key={key}")
    p = page(resp, 503)
    assert "A service is down" in p.content and "will not order twice" in p.content
    assert int(resp.headers["retry-after"]) >= 1
    assert p.inputs["idempotency_key"] == key  # a retry cannot order twice
    del fake_inventory.fail["reserve"]
    assert (await post_order(gw, 123, f"quantity=1&idempotency_key={key}")).status_code == 303


@pytest.mark.parametrize(
    "body",
    ["quantity=abc", "quantity=0", "quantity=10001", "quantity=" + "9" * 60, "quantity=",
     "quantity=1.5", "quantity=%EF%BC%91", "quantity=-1"],
)  # fmt: skip
async def test_bad_quantities_are_422_pages(gw: Gateway, body: str) -> None:
    key = await order_form(gw)
    p = page(await post_order(gw, 123, f"{body}&idempotency_key={key}"), 422)
    assert "Quantity must be a whole number from 1 to 10,000" in p.content


async def test_forms_that_are_not_ours_are_refused(gw: Gateway) -> None:
    page(await post_order(gw, 123, "quantity=1"), 422)  # no key: never order without one
    page(await post_order(gw, 123, "quantity=1&idempotency_key=" + "k" * 200), 422)
    resp = await gw.client.post("/product/123/order", json={"quantity": 1})
    page(resp, 415)
    page(await post_order(gw, 123, "quantity=1&idempotency_key=k\xe9"), 400)  # not ASCII
    page(await post_order(gw, 123, "&".join(["a=1"] * 20)), 400)
    page(await post_order(gw, 123, "quantity"), 400)
    cross = {"sec-fetch-site": "cross-site"}
    page(await post_order(gw, 123, "quantity=1&idempotency_key=k", **cross), 403)
    page(await post_order(gw, 123, "quantity=1&idempotency_key=k", origin="http://evil.test"), 403)
    page(await post_order(gw, 123, "quantity=1&idempotency_key=k", origin="null"), 403)
    page(await post_order(gw, 0, "quantity=1&idempotency_key=k"), 422)


async def test_middleware_errors_are_pages_on_the_storefront_and_json_on_the_api(
    gateway_factory: Any,
) -> None:
    gw: Gateway = await gateway_factory(
        max_body_bytes=100, rate_limit_rps=0.001, rate_limit_burst=3
    )
    big = await post_order(gw, 123, "quantity=1&idempotency_key=" + "k" * 200)
    page(big, 413)
    huge_query = await gw.client.get("/?q=" + "x" * 5000)
    assert "The request could not be read" in page(huge_query, 400).content
    for _ in range(3):
        await gw.client.get("/static/style.css")  # the burst
    limited = page(await gw.client.get("/status"), 429)
    assert "Too many requests" in limited.content
    assert_error(await gw.client.get("/api/product/123"), 429, "rate_limited")


async def test_api_errors_stay_json(gw: Gateway) -> None:
    assert_error(await gw.client.get("/api/product/abc"), 422, "validation_failed")
    assert_error(await gw.client.get("/api/products?ids=" + "1," * 3000), 400, "malformed_request")
    assert_error(await gw.client.get("/no/such/page"), 404, "not_found")


# --- orders -------------------------------------------------------------------------------


async def test_order_lookup(gw: Gateway) -> None:
    form = page(await gw.client.get("/orders"))
    assert "Find an order" in form.content
    redirect = await gw.client.get("/orders", params={"id": " 42 "})
    assert redirect.status_code == 303 and redirect.headers["location"] == "/orders/42"
    assert "Order not found" in page(await gw.client.get("/orders/42"), 404).content
    for bad in ("abc", "0", str(2**53 + 1), "%00"):
        page(await gw.client.get(f"/orders/{bad}"), 422)
        page(await gw.client.get(f"/orders?id={bad}"), 422)
    key = await order_form(gw)
    placed = await post_order(gw, 123, f"quantity=1&idempotency_key={key}")
    order_id = placed.headers["location"].split("/")[2].split("?")[0]
    found = page(await gw.client.get(f"/orders/{order_id}"))
    assert f"Order {order_id}" in found.content and "confirmed" in found.content


# --- status ---------------------------------------------------------------------------------


async def test_status_page_shows_api_stats(gw: Gateway) -> None:
    await gw.client.get("/api/product/123")
    stats = (await gw.client.get("/api/stats")).json()
    gateway = stats["api_gateway"]
    assert gateway["breakers"] == {"pricing": "closed", "inventory": "closed"}
    assert gateway["requests_processed"] >= 1 and gateway["avg_response_time_us"] > 0
    p = page(await gw.client.get("/status"))
    for text in ("Python", "Rust", "Go", "pricing-service", "Breaker: pricing closed", "up"):
        assert text in p.content, text
    assert "/static/status.js" in p.assets
    assert "Dashboards" not in p.content


async def test_status_page_links_grafana_and_prometheus_when_configured(
    gateway_factory: Any,
) -> None:
    gw: Gateway = await gateway_factory(
        grafana_url="http://localhost:3000", prometheus_url="https://prom.example/graph?x=1"
    )
    resp = await gw.client.get("/status")
    page(resp)
    assert '<a href="http://localhost:3000" rel="noopener">Grafana</a>' in resp.text
    assert '<a href="https://prom.example/graph?x=1" rel="noopener">Prometheus</a>' in resp.text


async def test_status_page_with_a_service_down(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(inventory_url="http://127.0.0.1:1")  # refused
    p = page(await gw.client.get("/status"))
    assert "Inventory unavailable" in p.content


def test_stat_formats() -> None:
    assert format_stat(1234, "count") == "1,234"
    assert format_stat(999.4, "micros") == "999 µs"
    assert format_stat(2500, "micros") == "2.5 ms"
    assert format_stat(None, "micros") == "—" and format_stat(True, "count") == "—"
    assert format_stat(12.6, "seconds") == "13 s"
    assert format_stat("", "text") == "—"


# --- assets, weight, headers ----------------------------------------------------------------


async def test_static_assets(gw: Gateway) -> None:
    css = await gw.client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
    js = await gw.client.get("/static/status.js")
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert js.headers["x-content-type-options"] == "nosniff"
    cached = await gw.client.get(
        "/static/style.css", headers={"if-none-match": css.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    page(await gw.client.get("/static/nope.css"), 404)
    assert (await gw.client.get("/static/..%2Fpages.py")).status_code == 404


async def test_every_page_weighs_under_100_kb_with_its_assets(gw: Gateway) -> None:
    key = await order_form(gw)
    placed = await post_order(gw, 123, f"quantity=1&idempotency_key={key}")
    weights = {}
    for path in ("/", "/?q=tent", "/product/123", "/orders", placed.headers["location"], "/status"):
        resp = await gw.client.get(path)
        total = len(resp.content)
        for asset in Page(resp.text).assets:
            assert asset.startswith("/static/"), asset
            total += len((await gw.client.get(asset)).content)
        weights[path] = total
    assert max(weights.values()) < 100_000, weights


def test_no_external_url_in_any_template_or_asset() -> None:
    files = [*(WEB / "templates").iterdir(), *(WEB / "static").iterdir()]
    assert len(files) >= 8
    for path in files:
        text = path.read_text().replace(SVG_NAMESPACE, "")
        assert not re.search(r"(?i)(https?:)?//[a-z0-9]", text.replace("// ", "")), path
        assert "<style" not in text and " style=" not in text, path  # CSP: no inline style
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\ssrc=\"/static/)", text), path


async def test_rendered_pages_name_no_other_origin(gw: Gateway) -> None:
    for path in ("/", "/product/123", "/orders", "/status", "/nope-not-a-page-but-/orders/1"):
        text = (await gw.client.get(path)).text
        assert not re.search(r"(?i)(src|href|action)=\"(https?:)?//", text), path


def test_every_error_code_has_a_human_message() -> None:
    assert set(MESSAGES) == set(CODES)
    for title, hint in MESSAGES.values():
        assert title and hint.endswith(".")


async def test_storefront_routes_are_not_in_the_api_document(gw: Gateway) -> None:
    paths = (await gw.client.get("/openapi.json")).json()["paths"]
    assert paths and not [p for p in paths if pages.is_web_path(p)]


def test_web_paths() -> None:
    for path in ("/", "/status", "/product/1", "/orders", "/orders/5", "/static/style.css"):
        assert pages.is_web_path(path), path
    for path in ("/api/product/1", "/health", "/metrics", "/docs", "/openapi.json", "/statusx"):
        assert not pages.is_web_path(path), path
