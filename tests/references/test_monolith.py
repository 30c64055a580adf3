# The Python monolith over HTTP: the seed answers of docs/DESIGN.md (product 123, an order
# of 2 of it) and the order rules (stock taken, 409 when short, idempotent replays).
from __future__ import annotations

from typing import Any

import httpx

from conftest import assert_error, seed_products

SEED = seed_products()


def product(client: httpx.Client, product_id: int) -> dict[str, Any]:
    resp = client.get(f"/api/product/{product_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_seed_product_then_seed_order(monolith: httpx.Client) -> None:
    # One test, in this order: the order changes product 123's stock and demand.
    body = product(monolith, 123)
    assert body["product_id"] == 123
    assert body["pricing"] == {
        "base_price": 173.0,
        "final_price": 164.35,
        "discount_percent": 5.0,
        "price_tier": "basic",
    }
    assert (body["inventory"]["available"], body["inventory"]["warehouse"]) == (223, "WH-4")
    assert isinstance(body["processing_time_ms"], float)

    resp = monolith.post("/api/order", json={"product_id": 123, "quantity": 2})
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert (order["unit_price"], order["total_price"]) == (164.35, 328.70)
    assert (order["product_id"], order["quantity"], order["status"]) == (123, 2, "confirmed")
    assert order["reservation_id"].startswith("RES-")
    assert isinstance(order["order_id"], int) and 0 < order["order_id"] <= 2**53

    assert product(monolith, 123)["inventory"]["available"] == 221
    stored = monolith.get(f"/api/order/{order['order_id']}")
    assert stored.status_code == 200
    assert stored.json()["total_price"] == 328.70


def test_order_is_priced_on_stock_before_its_hold(monolith: httpx.Client) -> None:
    # Product 1: 45 units (scarcity 1.2 under 50); the hold itself must not change the price.
    seed = SEED[1]
    quote = product(monolith, 1)["pricing"]["final_price"]
    resp = monolith.post("/api/order", json={"product_id": 1, "quantity": 1})
    assert resp.status_code == 201, resp.text
    assert resp.json()["unit_price"] == quote
    assert product(monolith, 1)["inventory"]["available"] == seed["stock"] - 1


def test_order_more_than_the_stock(monolith: httpx.Client) -> None:
    available = product(monolith, 2)["inventory"]["available"]
    resp = monolith.post("/api/order", json={"product_id": 2, "quantity": available + 1})
    assert_error(resp, 409, "insufficient_stock")
    assert product(monolith, 2)["inventory"]["available"] == available


def test_order_errors(monolith: httpx.Client) -> None:
    assert_error(monolith.get("/api/product/1001"), 404, "product_not_found")
    assert_error(monolith.get("/api/product/0"), 422, "validation_failed")
    bad = monolith.post("/api/order", json={"product_id": 3, "quantity": "2"})
    assert_error(bad, 422, "validation_failed")
    unknown = monolith.post("/api/order", json={"product_id": 1001, "quantity": 1})
    assert_error(unknown, 404, "product_not_found")
    assert_error(monolith.get("/api/order/1"), 404, "order_not_found")


def test_idempotent_order(monolith: httpx.Client) -> None:
    headers = {"Idempotency-Key": "refs-order-1"}
    body = {"product_id": 4, "quantity": 1}
    first = monolith.post("/api/order", json=body, headers=headers)
    assert first.status_code == 201, first.text
    replay = monolith.post("/api/order", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json()["order_id"] == first.json()["order_id"]
    assert product(monolith, 4)["inventory"]["available"] == SEED[4]["stock"] - 1
    other = monolith.post("/api/order", json={"product_id": 4, "quantity": 2}, headers=headers)
    assert_error(other, 409, "idempotency_conflict")


def test_admin_restock_feeds_orders(monolith: httpx.Client, admin: dict[str, str]) -> None:
    resp = monolith.put("/api/inventory/500", json={"available": 1_000_000}, headers=admin)
    assert resp.status_code == 200, resp.text
    order = monolith.post("/api/order", json={"product_id": 500, "quantity": 5})
    assert order.status_code == 201, order.text
    assert product(monolith, 500)["inventory"]["available"] == 999_995
