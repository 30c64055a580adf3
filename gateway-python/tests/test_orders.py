# The order saga through the HTTP API, in memory and Redis modes: seed values, compensation
# at every step, idempotency (replays, conflicts, concurrent replays) and every bad input.
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.orders.domain import Order
from gateway.orders.idempotency import intent_of

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


# --- compensation: every failure after the reserve gives the hold back ---------------------


async def _order_of(gw: Gateway, reservation_id: str) -> Order | None:
    order: Order | None = await gw.services.store.order_for_hold(reservation_id)
    return order


async def eventually(check: Any, timeout_s: float = 10.0) -> None:
    """Waits for background work (compensation, recovery) to show; no timing asserted."""
    end = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_reserve_failure_is_503(gw_store: Gateway, fake_inventory: FakeInventory) -> None:
    fake_inventory.fail["reserve"] = 500
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    assert fake_inventory.actions("commit") == []
    assert fake_inventory.stock[123] == 223


async def test_pricing_failure_releases_the_hold(
    gw_store: Gateway, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    fake_pricing.fail["calculate"] = 500
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    await eventually(lambda: fake_inventory.holds["RES-1"]["state"] == "released")
    assert fake_inventory.stock[123] == 223
    assert fake_inventory.actions("commit") == []
    assert await _order_of(gw_store, "RES-1") is None  # never stored: nothing to recover


async def test_pricing_timeout_releases_the_hold(
    gateway_factory: Any, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    fake_pricing.delay_s["calculate"] = 0.5
    gw: Gateway = await gateway_factory(upstream_timeout_ms=100, upstream_retries=0)
    assert_error(await gw.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    await eventually(lambda: fake_inventory.holds["RES-1"]["state"] == "released")


async def test_store_failure_releases_the_hold(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    # A Redis that is not there: the saga reserves, prices, then cannot store the order.
    gw: Gateway = await gateway_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert_error(await gw.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    await eventually(lambda: fake_inventory.holds["RES-1"]["state"] == "released")
    assert fake_inventory.actions("commit") == []


async def test_commit_failure_releases_and_marks_order_failed(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.fail["commit"] = 503
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 503, "upstream_unavailable")
    # Releasing told us the commit had not landed: the units are back, the order failed.
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    assert fake_inventory.stock[123] == 223
    order = await _order_of(gw_store, "RES-1")
    assert order is not None and order.status == "failed"


async def test_commit_of_expired_hold_is_409_and_order_failed(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    fake_inventory.expire_on_commit = True
    assert_error(await gw_store.client.post("/api/order", json=ORDER), 409, "reservation_expired")
    order = await _order_of(gw_store, "RES-1")
    assert order is not None and order.status == "failed"
    assert fake_inventory.stock[123] == 223


# --- the findings of the order-integrity review, each a test ------------------------------


async def test_commit_applied_answer_lost_is_confirmed(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    """Finding 1: the commit landed but its answer was lost. Releasing to find out answers
    reservation_committed, so the order is confirmed, and nothing is given back."""
    gw: Gateway = await gateway_factory(upstream_timeout_ms=100, upstream_retries=0)
    fake_inventory.lose_answer_s["commit"] = 0.5
    resp = await gw.client.post("/api/order", json=ORDER)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "confirmed"
    assert fake_inventory.holds["RES-1"]["state"] == "committed"
    assert fake_inventory.sold == {123: 2}
    order = await _order_of(gw, "RES-1")
    assert order is not None and order.status == "confirmed"


async def test_commit_answer_lost_and_inventory_gone_then_retry_sells_once(
    store_gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    """Finding 1, second half: the commit landed, its answer was lost and inventory stayed
    unreachable, so the order is left pending (not failed, not released). The client's
    retry with its key finds the same committed hold: one purchase, one sale, one order."""
    # The breaker would (rightly) refuse the retry for a cool-down after these failures.
    gw_store: Gateway = await store_gateway_factory(breaker_failures=1000)
    headers = {"Idempotency-Key": "lost-commit"}
    fake_inventory.lose_answer_s["commit"] = 0.5
    fake_inventory.fail["release"] = 503
    first = await gw_store.client.post(
        "/api/order", json=ORDER, headers=headers | {"X-Request-Deadline-Ms": "300"}
    )
    assert first.status_code == 503, first.text
    await gw_store.services.orders.drain()  # the first execution gives its key up
    order = await _order_of(gw_store, "RES-1")
    assert order is not None and order.status == "pending"
    del fake_inventory.fail["release"]
    retry = await gw_store.client.post("/api/order", json=ORDER, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.json()["order_id"] == order.order_id
    assert retry.json()["reservation_id"] == "RES-1"
    assert fake_inventory.sold == {123: 2}
    assert len(fake_inventory.holds) == 1
    assert fake_inventory.units_conserved(123, 223)


async def test_commit_cancelled_by_client_disconnect_still_settles(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    """Finding 1, cancellation: the request is cancelled while the commit is in flight; the
    workflow goes on, confirms, and a retry of the key replays that answer."""
    gw: Gateway = await gateway_factory()
    fake_inventory.delay_s["commit"] = 0.3
    headers = {"Idempotency-Key": "cancelled"}
    request = asyncio.create_task(gw.client.post("/api/order", json=ORDER, headers=headers))
    await eventually(lambda: fake_inventory.actions("commit") != [])
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await gw.services.orders.drain()
    assert fake_inventory.holds["RES-1"]["state"] == "committed"
    replay = await gw.client.post("/api/order", json=ORDER, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["status"] == "confirmed"


async def test_expired_hold_is_never_read_as_committed(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    """Finding 2: the commit never arrives in time and the hold expires meanwhile. Inventory
    names the state it found (expired), so the order fails and the units stay on sale."""
    gw: Gateway = await gateway_factory(upstream_timeout_ms=100, upstream_retries=0)
    fake_inventory.delay_s["commit"] = 0.3
    fake_inventory.fail["commit"] = 503  # after the delay: it did not land
    fake_inventory.expire_on_release = True
    assert_error(await gw.client.post("/api/order", json=ORDER), 409, "reservation_expired")
    order = await _order_of(gw, "RES-1")
    assert order is not None and order.status == "failed"
    assert fake_inventory.holds["RES-1"]["state"] == "expired"
    assert fake_inventory.sold == {}
    assert fake_inventory.stock[123] == 223


async def test_reserve_applied_answer_lost_gives_the_hold_back(
    gw_store: Gateway, fake_inventory: FakeInventory
) -> None:
    """Finding 3: the reserve landed but its answer came after the deadline. Replaying the
    intent's key finds the hold, and it goes back on sale."""
    fake_inventory.lose_answer_s["reserve"] = 0.5
    resp = await gw_store.client.post(
        "/api/order",
        json={"product_id": 123, "quantity": 200},
        headers={"X-Request-Deadline-Ms": "50"},
    )
    assert_error(resp, 503, "deadline_exceeded")
    await gw_store.services.orders.drain()
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    assert fake_inventory.stock[123] == 223


async def test_store_calls_are_bounded_by_the_deadline(gateway_factory: Any) -> None:
    """Finding 4: a Redis that accepts connections and never answers. Without a bound the
    1 s socket timeout would answer upstream_unavailable; bounded, the deadline wins."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gw: Gateway = await gateway_factory(redis_url=f"redis://127.0.0.1:{port}/0")
        resp = await gw.client.post(
            "/api/order",
            json=ORDER,
            headers={"Idempotency-Key": "hang", "X-Request-Deadline-Ms": "200"},
        )
        assert_error(resp, 503, "deadline_exceeded")
        assert gw.services.store.redis.get_retry().get_retries() == 0
    finally:
        server.close()


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
    # Inventory's key derives from the client's, so every retry of it finds the same hold.
    assert fake_inventory.by_key == {intent_of("order-abc"): "RES-1"}


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
    await gw_store.services.orders.drain()
    del fake_pricing.fail["calculate"]
    resp = await gw_store.client.post("/api/order", json=ORDER, headers=headers)
    assert resp.status_code == 201
    # The first hold was released, so the same intent key made a new one: one sale.
    assert resp.json()["reservation_id"] == "RES-2"
    assert fake_inventory.holds["RES-1"]["state"] == "released"
    assert fake_inventory.holds["RES-2"]["state"] == "committed"
    assert fake_inventory.sold == {123: 2}


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
    await eventually(lambda: fake_inventory.actions("reserve") != [])
    second = await gw_store.client.post(
        "/api/order", json=ORDER, headers=headers | {"X-Request-Deadline-Ms": "150"}
    )
    assert_error(second, 409, "request_in_progress")
    assert (await first).status_code == 201
    assert len(fake_inventory.actions("reserve")) == 1


# --- recovery ------------------------------------------------------------------------------


async def test_recovery_resolves_pending_orders_from_the_hold(
    store_gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    """Orders left pending (inventory unreachable after the commit) are resolved by the
    loop: a committed hold confirms its order, a held one is released and fails it."""
    gw: Gateway = await store_gateway_factory(order_recovery_s=1, breaker_failures=1000)
    fake_inventory.stock[123] = 1000
    # Order 1: the commit lands, its answer is lost, inventory stays unreachable.
    fake_inventory.lose_answer_s["commit"] = 0.5
    fake_inventory.fail["release"] = 503
    first = await gw.client.post("/api/order", json=ORDER, headers={"X-Request-Deadline-Ms": "300"})
    assert first.status_code == 503
    # Order 2: the commit never arrives; the hold is still held.
    fake_inventory.fail["commit"] = 503
    second = await gw.client.post("/api/order", json=ORDER)
    assert second.status_code == 503
    await gw.services.orders.drain()  # both executions gave up on finding out
    one, two = await _order_of(gw, "RES-1"), await _order_of(gw, "RES-2")
    assert one is not None and one.status == "pending"
    assert two is not None and two.status == "pending"
    del fake_inventory.fail["release"]

    async def statuses() -> tuple[str, str]:
        a, b = await _order_of(gw, "RES-1"), await _order_of(gw, "RES-2")
        assert a is not None and b is not None
        return a.status, b.status

    for _ in range(300):
        if await statuses() == ("confirmed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert await statuses() == ("confirmed", "failed")
    assert fake_inventory.holds["RES-2"]["state"] == "released"
    assert fake_inventory.sold == {123: 2}
    metrics = (await gw.client.get("/metrics")).text
    assert 'polyshop_orders_recovered_total{status="confirmed"} 1.0' in metrics
    assert 'polyshop_orders_recovered_total{status="failed"} 1.0' in metrics


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
