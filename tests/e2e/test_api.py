# The public API against the real stack, in memory and Redis modes: the seed examples value
# for value, the order saga under 1,000 concurrent orders, idempotency, and every bad input.
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from conftest import Stack, StackFactory, available, restock


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.read()
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = body
        return resp.status, data, resp.headers


def assert_error(status: int, data: Any, headers: Any, want_status: int, code: str) -> None:
    assert status == want_status, data
    assert set(data) == {"error"}, data
    assert data["error"]["code"] == code
    assert data["error"]["request_id"] == headers["X-Request-Id"]
    if want_status in (429, 503):
        assert int(headers["Retry-After"]) >= 1


async def test_seed_examples(stack: Stack, http: aiohttp.ClientSession) -> None:
    status, product, _ = await call(http, "GET", f"{stack.gateway}/api/product/123")
    assert status == 200, product
    assert product["product_id"] == 123
    assert product["pricing"] == {
        "base_price": 173.0,
        "final_price": 164.35,
        "discount_percent": 5.0,
        "price_tier": "basic",
    }
    assert product["inventory"]["available"] == 223
    assert product["inventory"]["warehouse"] == "WH-4"
    assert product["processing_time_ms"] >= 0

    status, order, _ = await call(
        http, "POST", f"{stack.gateway}/api/order", json={"product_id": 123, "quantity": 2}
    )
    assert status == 201, order
    assert order["unit_price"] == 164.35
    assert order["total_price"] == 328.7
    assert order["status"] == "confirmed"
    assert order["reservation_id"].startswith("RES-")
    assert 0 < order["order_id"] <= 2**53
    assert await available(http, stack, 123) == 221

    status, again, _ = await call(http, "GET", f"{stack.gateway}/api/order/{order['order_id']}")
    assert status == 200
    assert {k: v for k, v in again.items() if k != "processing_time_ms"} == {
        k: v for k, v in order.items() if k != "processing_time_ms"
    }

    status, stats, _ = await call(http, "GET", f"{stack.gateway}/api/stats")
    assert status == 200
    assert stats["api_gateway"]["uptime"] >= 0
    assert stats["pricing_service"]["language"] == "Rust"
    assert stats["pricing_service"]["requests_processed"] >= 1
    assert stats["inventory_service"]["language"] == "Go"
    assert "active_goroutines" in stats["inventory_service"]


async def test_batch(stack: Stack, http: aiohttp.ClientSession) -> None:
    status, data, _ = await call(http, "GET", f"{stack.gateway}/api/products?ids=1,2,999999")
    assert status == 200, data
    assert [p["product_id"] for p in data["products"]] == [1, 2]
    assert data["not_found"] == [999999]


# What the two concurrency tests prove is atomicity, not speed: their stacks get budgets no
# machine runs out of (a loaded 2-core CI box takes seconds per order in a 1,000-order
# burst), so a timeout can neither fail them nor open a breaker that later tests inherit.
UNHURRIED = {
    "*": {"UPSTREAM_TIMEOUT_MS": "60000", "UPSTREAM_RETRIES": "0", "BULKHEAD_WAIT_MS": "60000"},
    "gateway": {"REQUEST_DEADLINE_MS": "120000"},
}


async def test_1000_concurrent_orders_for_100_units(
    mode: str, make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack(mode, **UNHURRIED)
    product = 500
    await restock(http, stack, product, 100)

    async def order() -> tuple[int, Any, Any]:
        return await call(
            http, "POST", f"{stack.gateway}/api/order", json={"product_id": product, "quantity": 1}
        )

    answers = await asyncio.gather(*(order() for _ in range(1000)))
    statuses = [a[0] for a in answers]
    assert statuses.count(201) == 100, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(409) == 900
    assert all(a[1]["error"]["code"] == "insufficient_stock" for a in answers if a[0] == 409)
    assert await available(http, stack, product) == 0
    confirmed = [a[1] for a in answers if a[0] == 201]
    assert len({o["order_id"] for o in confirmed}) == 100
    assert len({o["reservation_id"] for o in confirmed}) == 100
    reads = await asyncio.gather(
        *(call(http, "GET", f"{stack.gateway}/api/order/{o['order_id']}") for o in confirmed)
    )
    assert all(r[0] == 200 and r[1]["status"] == "confirmed" for r in reads)


async def test_parallel_same_key_makes_one_order(
    mode: str, make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack(mode, **UNHURRIED)
    product = 501
    await restock(http, stack, product, 50)
    headers = {"Idempotency-Key": f"e2e-same-key-{stack.mode}"}
    body = {"product_id": product, "quantity": 3}
    answers = await asyncio.gather(
        *(
            call(http, "POST", f"{stack.gateway}/api/order", json=body, headers=headers)
            for _ in range(20)
        )
    )
    assert {a[0] for a in answers} == {201}
    assert len({a[1]["order_id"] for a in answers}) == 1
    assert await available(http, stack, product) == 47
    status, data, hdrs = await call(
        http,
        "POST",
        f"{stack.gateway}/api/order",
        json={"product_id": product, "quantity": 4},
        headers=headers,
    )
    assert_error(status, data, hdrs, 409, "idempotency_conflict")
    assert await available(http, stack, product) == 47


async def test_insufficient_stock(stack: Stack, http: aiohttp.ClientSession) -> None:
    product = 502
    await restock(http, stack, product, 2)
    status, data, hdrs = await call(
        http, "POST", f"{stack.gateway}/api/order", json={"product_id": product, "quantity": 3}
    )
    assert_error(status, data, hdrs, 409, "insufficient_stock")
    assert await available(http, stack, product) == 2


JSON = {"Content-Type": "application/json"}
BAD_INPUTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/api/product/0", {}, 422, "validation_failed"),
    ("GET", "/api/product/1000000001", {}, 422, "validation_failed"),
    ("GET", "/api/product/abc", {}, 422, "validation_failed"),
    ("GET", "/api/product/999999999", {}, 404, "product_not_found"),
    ("GET", "/api/products", {}, 422, "validation_failed"),
    ("GET", "/api/products?ids=1,x", {}, 422, "validation_failed"),
    ("GET", "/api/products?ids=" + ",".join(map(str, range(1, 102))), {}, 422, "validation_failed"),
    ("GET", "/api/order/0", {}, 422, "validation_failed"),
    ("GET", "/api/order/abc", {}, 422, "validation_failed"),
    ("GET", "/api/order/123456789", {}, 404, "order_not_found"),
    ("GET", "/api/nope", {}, 404, "not_found"),
    ("DELETE", "/api/order", {}, 405, "method_not_allowed"),
    ("POST", "/api/order", {"data": b"{oops", "headers": JSON}, 400, "malformed_request"),
    ("POST", "/api/order", {"data": b"", "headers": JSON}, 400, "malformed_request"),
    ("POST", "/api/order", {"data": b'{"product_id":1,"quantity":1}'}, 415,
     "unsupported_media_type"),
    ("POST", "/api/order", {"data": b"[]", "headers": JSON}, 422, "validation_failed"),
    ("POST", "/api/order", {"json": {"product_id": 1}}, 422, "validation_failed"),
    ("POST", "/api/order", {"json": {"product_id": 1, "quantity": 0}}, 422, "validation_failed"),
    ("POST", "/api/order", {"json": {"product_id": 1, "quantity": 10001}}, 422,
     "validation_failed"),
    ("POST", "/api/order", {"json": {"product_id": "1", "quantity": 1}}, 422,
     "validation_failed"),
    ("POST", "/api/order", {"json": {"product_id": 0, "quantity": 1}}, 422, "validation_failed"),
    ("POST", "/api/order", {"json": {"product_id": 999999999, "quantity": 1}}, 404,
     "product_not_found"),
    ("POST", "/api/order", {"json": {"product_id": 1, "quantity": 1},
                            "headers": {"Idempotency-Key": "x" * 129}}, 422, "validation_failed"),
    ("POST", "/api/order", {"data": b"{" + b" " * 70000 + b"}", "headers": JSON}, 413,
     "payload_too_large"),
    ("GET", "/api/product/1", {"headers": {"X-Request-Deadline-Ms": "0"}}, 503,
     "deadline_exceeded"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    BAD_INPUTS,
    ids=[f"{m} {p[:40]} {s}" for m, p, _, s, _ in BAD_INPUTS],
)
async def test_bad_input(
    stack: Stack,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    got, data, headers = await call(http, method, stack.gateway + path, **kwargs)
    assert_error(got, data, headers, status, code)
    if status == 422:
        assert data["error"]["details"]


async def test_health_ready_metrics(stack: Stack, http: aiohttp.ClientSession) -> None:
    status, data, _ = await call(http, "GET", f"{stack.gateway}/health")
    assert (status, data["status"], data["service"]) == (200, "ok", "gateway")
    status, data, _ = await call(http, "GET", f"{stack.gateway}/ready")
    assert (status, data) == (200, {"status": "ready"})
    async with http.get(f"{stack.gateway}/metrics") as resp:
        text = await resp.text()
    assert 'http_route="/api/product/{id}"' in text
    assert "polyshop_orders_total" in text
