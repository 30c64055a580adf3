# The order saga through the HTTP API, in memory and Redis modes: seed values, compensation
# at every step, idempotency (replays, conflicts, concurrent replays) and every bad input.
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import FakeInventory, FakePricing, Gateway, free_port
from test_products import assert_error

ORDER = {"product_id": 123, "quantity": 2}


async def test_seed_order_and_read_back(gw_store: Gateway, fake_pricing: FakePricing) -> None:
    resp = await gw_store.client.post("/api/order", json=ORDER)
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["unit_price"] == 164.35
    assert order["total_price"] == 328.7
    assert order["status"] == "confirmed"
    assert order["reservation_id"].startswith("RES-")
    assert (order["product_id"], order["quantity"]) == (123, 2)
    assert isinstance(order["order_id"], int)
    assert 0 < order["order_id"] <= 2**53
    # Priced on the stock before the hold (223), not after it (221).
    assert fake_pricing.calls[-1] == {
        "product_id": 123,
        "quantity_available": 223,
        "quantity": 2,
        "recent_demand": 0,
    }
    got = await gw_store.client.get(f"/api/order/{order['order_id']}")
    assert got.status_code == 200
    read = got.json()
    assert {k: v for k, v in read.items() if k != "processing_time_ms"} == {
        k: v for k, v in order.items() if k != "processing_time_ms"
    }


async def test_order_ids_are_unique(gw_store: Gateway, fake_inventory: FakeInventory) -> None:
    fake_inventory.stock[123] = 10_000
    answers = await asyncio.gather(
        *(
            gw_store.client.post("/api/order", json={"product_id": 123, "quantity": 1})
            for _ in range(50)
        )
    )
    ids = [a.json()["order_id"] for a in answers]
    assert all(a.status_code == 201 for a in answers)
    assert len(set(ids)) == 50
    assert max(ids) <= 2**53


async def test_insufficient_stock_is_409_without_side_effects(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    err = assert_error(
        await gw_store.client.post("/api/order", json={"product_id": 7, "quantity": 4}),
        409,
        "insufficient_stock",
    )
    assert "upstream" not in err["message"]
    assert fake_inventory.actions("commit") == []
    assert fake_inventory.actions("release") == []
    assert fake_inventory.stock[7] == 3


async def test_unknown_product_is_404(gw_store: Gateway) -> None:
    assert_error(
        await gw_store.client.post("/api/order", json={"product_id": 555, "quantity": 1}),
        404,
        "product_not_found",
    )


async def test_unknown_order_is_404(gw_store: Gateway) -> None:
    assert_error(await gw_store.client.get("/api/order/424242"), 404, "order_not_found")


# --- compensation: every failure after the reserve releases the hold ----------------------


async def test_reserve_failure_is_503_and_nothing_to_release(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.fail["reserve"] = 500
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    assert fake_inventory.actions("release") == []


async def test_pricing_failure_releases_the_hold(
    gw_store: Gateway, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    fake_pricing.fail["calculate"] = 500
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    assert fake_inventory.actions("release") == ["RES-1"]
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    assert fake_inventory.stock[123] == 223
    assert fake_inventory.actions("commit") == []


async def test_pricing_timeout_releases_the_hold(
    gateway_factory: Any, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    fake_pricing.delay_s["calculate"] = 0.5
    gw: Gateway = await gateway_factory(upstream_timeout_ms=100, upstream_retries=0)
    assert_error(await gw.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    assert fake_inventory.holds["RES-1"]["state"] == "released"


async def test_store_failure_releases_the_hold(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    # A Redis that is not there: the saga reserves, prices, then cannot store the order.
    gw: Gateway = await gateway_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert_error(await gw.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    assert fake_inventory.actions("commit") == []


async def test_lost_commit_answer_is_rechecked_not_released(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    gw: Gateway = await gateway_factory(upstream_timeout_ms=100)
    fake_inventory.commit_lose_answer_s = 0.5
    resp = await gw.client.post("/api/order", json=ORDER)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "confirmed"
    assert fake_inventory.actions("commit") == ["RES-1", "RES-1"]
    assert fake_inventory.actions("release") == []
    assert fake_inventory.holds["RES-1"]["state"] == "committed"


async def test_commit_failure_releases_and_marks_order_failed(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.fail["commit"] = 503
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    # One recheck (its answer may have been lost), then the hold is released.
    assert fake_inventory.actions("commit") == ["RES-1", "RES-1"]
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    stored = await gw_store.services.store.get_order(await _last_order_id(gw_store))
    assert stored["status"] == "failed"


async def _last_order_id(gw: Gateway) -> int:
    store = gw.services.store
    if store.kind == "memory":
        return int(next(reversed(store._orders)))
    return int(await store.redis.get("polyshop:gateway:order_seq"))


async def test_release_is_retried_until_it_succeeds(
    gw_store: Gateway, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    fake_pricing.fail["calculate"] = 500
    fake_inventory.fail["release"] = 503
    fake_inventory.fail_times["release"] = 3  # inline try + its retry, then 1 background try
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    for _ in range(100):
        if fake_inventory.holds["RES-1"]["state"] == "released":
            break
        await asyncio.sleep(0.05)
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    assert len(fake_inventory.actions("release")) == 4


async def test_commit_of_expired_hold_is_409_and_order_failed(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.commit_error = (409, "reservation_expired")
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 409, "reservation_expired")
    stored = await gw_store.services.store.get_order(await _last_order_id(gw_store))
    assert stored["status"] == "failed"
    assert fake_inventory.actions("release") == ["RES-1"]


# --- idempotency ---------------------------------------------------------------------------


async def test_same_key_same_body_replays_the_first_answer(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    headers = {"Idempotency-Key": "order-abc"}
    first = await gw_store.client.post("/api/order", json=ORDER, headers=headers)
    again = await gw_store.client.post(
        "/api/order",
        content=b'{ "quantity": 2, "product_id": 123 }',
        headers=headers | {"content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(fake_inventory.actions("reserve")) == 1
    # The client's key went down to inventory so a crashed gateway's retry finds the same hold.
    assert fake_inventory.by_key == {"order-abc": "RES-1"}


async def test_same_key_other_body_is_409_conflict(gw_store: Gateway) -> None:
    headers = {"Idempotency-Key": "order-xyz"}
    assert (
        await gw_store.client.post("/api/order", json=ORDER, headers=headers)
    ).status_code == 201
    other = {"product_id": 123, "quantity": 3}
    assert_error(
        await gw_store.client.post("/api/order", json=other, headers=headers),
        409,
        "idempotency_conflict",
    )


async def test_business_refusal_is_replayed_too(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    headers = {"Idempotency-Key": "k-409"}
    body = {"product_id": 7, "quantity": 5}
    first = await gw_store.client.post("/api/order", json=body, headers=headers)
    fake_inventory.stock[7] = 100
    again = await gw_store.client.post("/api/order", json=body, headers=headers)
    assert first.status_code == again.status_code == 409
    assert again.content == first.content


async def test_failed_execution_gives_the_key_back(
    gw_store: Gateway, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    headers = {"Idempotency-Key": "k-retry"}
    fake_pricing.fail["calculate"] = 500
    assert (
        await gw_store.client.post("/api/order", json=ORDER, headers=headers)
    ).status_code == 503
    del fake_pricing.fail["calculate"]
    resp = await gw_store.client.post("/api/order", json=ORDER, headers=headers)
    assert resp.status_code == 201
    # The retry got a new hold, not the released one.
    assert resp.json()["reservation_id"] == "RES-2"
    assert fake_inventory.holds["RES-2"]["state"] == "committed"


async def test_concurrent_same_key_makes_one_order(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.delay_s["reserve"] = 0.1  # keep the first execution in flight
    headers = {"Idempotency-Key": "k-parallel"}
    answers = await asyncio.gather(
        *(gw_store.client.post("/api/order", json=ORDER, headers=headers) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    assert len(fake_inventory.actions("reserve")) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 19


async def test_replay_waiting_past_its_deadline_is_409_in_progress(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.delay_s["reserve"] = 0.6
    headers = {"Idempotency-Key": "k-slow"}
    first = asyncio.create_task(gw_store.client.post("/api/order", json=ORDER, headers=headers))
    await asyncio.sleep(0.1)
    second = await gw_store.client.post(
        "/api/order", json=ORDER, headers=headers | {"X-Request-Deadline-Ms": "150"}
    )
    assert_error(second, 409, "request_in_progress")
    assert (await first).status_code == 201
    assert len(fake_inventory.actions("reserve")) == 1


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code"),
    [
        (b'{"product_id": 1, "quantity": 1', "application/json", 400, "malformed_request"),
        (b"not json", "application/json", 400, "malformed_request"),
        (b"", "application/json", 400, "malformed_request"),
        (b"\xff\xfe", "application/json", 400, "malformed_request"),
        (b'{"product_id": 1, "quantity": 1}', "text/plain", 415, "unsupported_media_type"),
        (b'{"product_id": 1, "quantity": 1}', None, 415, "unsupported_media_type"),
        (
            b"product_id=1&quantity=1",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (b"[1, 2]", "application/json", 422, "validation_failed"),
        (b'"text"', "application/json", 422, "validation_failed"),
        (b"{}", "application/json", 422, "validation_failed"),
        (b'{"product_id": 1, "quantity": 0}', "application/json", 422, "validation_failed"),
        (b'{"product_id": 1, "quantity": 10001}', "application/json", 422, "validation_failed"),
        (b'{"product_id": 0, "quantity": 1}', "application/json", 422, "validation_failed"),
        (b'{"product_id": "1", "quantity": 1}', "application/json", 422, "validation_failed"),
        (b'{"product_id": 1, "quantity": 1.5}', "application/json", 422, "validation_failed"),
        (b'{"product_id": 1e3, "quantity": 1}', "application/json", 422, "validation_failed"),
        (
            b'{"product_id": 1, "quantity": 1}',
            "application/json; charset=utf-8",
            404,
            "product_not_found",
        ),
    ],
)
async def test_bad_order_bodies(
    gw: Gateway, content: bytes, ctype: str | None, status: int, code: str
) -> None:
    headers = {"content-type": ctype} if ctype else {}
    err = assert_error(
        await gw.client.post("/api/order", content=content, headers=headers), status, code
    )
    if status == 422:
        assert err["details"]
        assert all({"field", "message"} == set(d) for d in err["details"])


@pytest.mark.parametrize("key", ["", "x" * 129, "caf\u00e9", "tab\tkey"])
async def test_bad_idempotency_key_is_422(gw: Gateway, key: str) -> None:
    resp = await gw.client.post(
        "/api/order", json=ORDER, headers=[("Idempotency-Key", key.encode("utf-8"))]
    )
    err = assert_error(resp, 422, "validation_failed")
    assert err["details"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize("path", ["/api/order/0", "/api/order/abc", f"/api/order/{2**53 + 1}"])
async def test_bad_order_id_is_422(gw: Gateway, path: str) -> None:
    err = assert_error(await gw.client.get(path), 422, "validation_failed")
    assert err["details"][0]["field"] == "order_id"


async def test_declared_oversized_body_is_413(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(max_body_bytes=100)
    resp = await gw.client.post(
        "/api/order", content=b"{" + b" " * 200 + b"}", headers={"content-type": "application/json"}
    )
    assert_error(resp, 413, "payload_too_large")


async def test_streamed_oversized_body_is_413_before_it_is_read(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(max_body_bytes=1000)
    sent = 0

    async def chunks() -> Any:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 100

    resp = await gw.client.post(
        "/api/order", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(resp, 413, "payload_too_large")
    assert sent < 20


async def test_no_framework_error_body_leaks(gw: Gateway) -> None:
    for resp in [
        await gw.client.get("/api/order/abc"),
        await gw.client.delete("/api/order/1"),
        await gw.client.get("/api/orders"),
        await gw.client.get("/api/products?ids=x"),
    ]:
        assert "detail" not in resp.json()
        assert resp.json()["error"]["request_id"]


async def test_upstream_error_text_never_reaches_the_client(
    gw: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.fail["reserve"] = 500
    resp = await gw.client.post("/api/order", json=ORDER)
    assert "upstream_unavailable" in resp.text
    assert resp.json()["error"]["message"] == "inventory service unavailable"
