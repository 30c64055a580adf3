# The product read path: pass-through of pricing's bytes with processing_time_ms spliced in,
# header propagation, every bad id, and upstream failures mapped to 404/503 with Retry-After.
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gateway.api.routes.products import splice_processing_time
from gateway.clients.base import UpstreamError

from conftest import FakePricing, Gateway


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert err["code"] == code
    assert err["request_id"] == resp.headers["x-request-id"]
    assert "detail" not in body
    if status in (429, 503):
        assert int(resp.headers["retry-after"]) >= 1
    return err


async def test_seed_product_123(gw: Gateway) -> None:
    resp = await gw.client.get("/api/product/123")
    assert resp.status_code == 200
    body = resp.json()
    assert body["product_id"] == 123
    assert body["pricing"] == {
        "base_price": 173.0,
        "final_price": 164.35,
        "discount_percent": 5.0,
        "price_tier": "basic",
    }
    assert body["inventory"]["warehouse"] == "WH-4"
    assert isinstance(body["processing_time_ms"], float)
    assert body["processing_time_ms"] >= 0


async def test_bytes_are_passed_through_unparsed(gw: Gateway, fake_pricing: FakePricing) -> None:
    # A field the gateway does not know survives: proof that nothing re-serialises the body.
    fake_pricing.raw_product_body = b'{"product_id":5,"zz_unknown":[1, 2.50]}\n'
    resp = await gw.client.get("/api/product/5")
    assert resp.content.startswith(b'{"product_id":5,"zz_unknown":[1, 2.50],"processing_time_ms":')
    assert orjson.loads(resp.content)["zz_unknown"] == [1, 2.5]


def test_splice_handles_empty_and_rejects_non_objects() -> None:
    assert orjson.loads(splice_processing_time(b"{ }"))["processing_time_ms"] == 0.0
    for bad in (b"[1]", b"", b"}", b"null"):
        with pytest.raises(UpstreamError):
            splice_processing_time(bad)


async def test_headers_are_propagated(gw: Gateway, fake_pricing: FakePricing) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    resp = await gw.client.get(
        "/api/product/123",
        headers={
            "X-Request-Id": "abc-123",
            "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
            "X-Request-Deadline-Ms": "800",
        },
    )
    assert resp.headers["x-request-id"] == "abc-123"
    sent = fake_pricing.calls[-1]["headers"]
    assert sent["X-Request-Id"] == "abc-123"
    version, trace_id, span, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", trace, "01")
    assert span != "00f067aa0ba902b7"
    assert 0 < int(sent["X-Request-Deadline-Ms"]) <= 800


async def test_bad_request_id_and_traceparent_are_replaced(
    gw: Gateway, fake_pricing: FakePricing
) -> None:
    resp = await gw.client.get(
        "/api/product/123", headers={"X-Request-Id": "bad id!", "traceparent": "garbage"}
    )
    rid = resp.headers["x-request-id"]
    assert rid != "bad id!"
    assert len(rid) == 32
    tp = fake_pricing.calls[-1]["headers"]["traceparent"]
    assert len(tp.split("-")[1]) == 32


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/product/0", "id"),
        ("/api/product/1000000001", "id"),
        ("/api/product/-1", "id"),
        ("/api/product/abc", "id"),
        ("/api/product/1.5", "id"),
        ("/api/product/99999999999999999999999", "id"),
    ],
)
async def test_bad_product_id_is_422(gw: Gateway, path: str, field: str) -> None:
    err = assert_error(await gw.client.get(path), 422, "validation_failed")
    assert err["details"][0]["field"] == field


async def test_unknown_product_is_404(gw: Gateway) -> None:
    assert_error(await gw.client.get("/api/product/999"), 404, "product_not_found")


async def test_pricing_error_is_503_with_generic_message(
    gw: Gateway, fake_pricing: FakePricing
) -> None:
    fake_pricing.fail["product"] = 500
    err = assert_error(await gw.client.get("/api/product/123"), 503, "upstream_unavailable")
    assert err["message"] == "pricing service unavailable"


async def test_pricing_down_is_503(gateway_factory: Any) -> None:
    from conftest import free_port

    gw: Gateway = await gateway_factory(pricing_url=f"http://127.0.0.1:{free_port()}")
    assert_error(await gw.client.get("/api/product/123"), 503, "upstream_unavailable")


async def test_pricing_slow_past_timeout_is_503(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    fake_pricing.delay_s["product"] = 0.5
    gw: Gateway = await gateway_factory(upstream_timeout_ms=50, upstream_retries=0)
    assert_error(await gw.client.get("/api/product/123"), 503, "upstream_unavailable")


async def test_deadline_header_bounds_the_call(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    fake_pricing.delay_s["product"] = 0.5
    gw: Gateway = await gateway_factory()
    resp = await gw.client.get("/api/product/123", headers={"X-Request-Deadline-Ms": "60"})
    assert_error(resp, 503, "deadline_exceeded")
    resp = await gw.client.get("/api/product/123", headers={"X-Request-Deadline-Ms": "0"})
    assert_error(resp, 503, "deadline_exceeded")
    await asyncio.sleep(0)


async def test_batch(gw: Gateway, fake_pricing: FakePricing) -> None:
    resp = await gw.client.get("/api/products", params={"ids": "123,999,123"})
    assert resp.status_code == 200
    body = resp.json()
    assert [p["product_id"] for p in body["products"]] == [123]
    assert body["not_found"] == [999]
    assert "processing_time_ms" in body
    assert fake_pricing.calls[-1]["ids"] == [123, 999]  # duplicates asked once


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?ids=",
        "?ids=1,,2",
        "?ids=a,b",
        "?ids=0",
        "?ids=" + ",".join(str(i) for i in range(1, 102)),
    ],
)
async def test_bad_batch_is_422(gw: Gateway, query: str) -> None:
    err = assert_error(await gw.client.get("/api/products" + query), 422, "validation_failed")
    assert err["details"][0]["field"] == "ids"


async def test_batch_of_100_is_fine(gw: Gateway) -> None:
    ids = ",".join(str(i) for i in range(1, 101))
    assert (await gw.client.get(f"/api/products?ids={ids}")).status_code == 200


async def test_unknown_route_and_method(gw: Gateway) -> None:
    assert_error(await gw.client.get("/api/nope"), 404, "not_found")
    resp = await gw.client.post("/api/product/123")
    err = assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["allow"]
    assert err["message"]


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", ""])
async def test_unparsable_deadline_header_is_400(gw: Gateway, value: str) -> None:
    resp = await gw.client.get("/api/product/123", headers={"X-Request-Deadline-Ms": value})
    err = assert_error(resp, 400, "malformed_request")
    assert err["details"][0]["field"] == "X-Request-Deadline-Ms"
