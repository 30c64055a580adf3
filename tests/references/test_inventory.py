# The Python inventory reference over HTTP: the seed stock, and the hold semantics of
# inventory.openapi.yaml (reserve takes units from available, release gives them back,
# commit sells them, expiry returns them, 409s in the shared error shape).
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from conftest import assert_error, seed_products

SEED = seed_products()


def item(client: httpx.Client, product_id: int) -> dict[str, Any]:
    resp = client.get(f"/api/inventory/{product_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def reserve(client: httpx.Client, product_id: int, quantity: int, **extra: Any) -> httpx.Response:
    return client.post(
        "/api/reservations", json={"product_id": product_id, "quantity": quantity, **extra}
    )


def test_seed_stock_of_product_123(inventory: httpx.Client) -> None:
    body = item(inventory, 123)
    assert {k: body[k] for k in ("product_id", "available", "reserved", "warehouse")} == {
        "product_id": 123,
        "available": 223,
        "reserved": 0,
        "warehouse": "WH-4",
    }
    assert body["recent_demand"] == 0
    assert body["last_updated"].endswith("Z") and len(body["last_updated"]) == 24


@pytest.mark.parametrize("product_id", [1, 500, 1000])
def test_seed_stock_matches_the_catalog(inventory: httpx.Client, product_id: int) -> None:
    body = item(inventory, product_id)
    assert body["available"] == SEED[product_id]["stock"]
    assert body["warehouse"] == SEED[product_id]["warehouse"]


def test_unknown_and_invalid_ids(inventory: httpx.Client) -> None:
    assert_error(inventory.get("/api/inventory/1001"), 404, "product_not_found")
    err = assert_error(inventory.get("/api/inventory/0"), 422, "validation_failed")
    assert err["details"][0]["field"] == "product_id"
    assert_error(inventory.get("/api/inventory/abc"), 422, "validation_failed")


def test_reserve_then_release(inventory: httpx.Client) -> None:
    before = item(inventory, 7)["available"]
    resp = reserve(inventory, 7, 3)
    assert resp.status_code == 201, resp.text
    hold = resp.json()
    assert hold["state"] == "held" and hold["reservation_id"].startswith("RES-")
    assert (hold["available_before"], hold["recent_demand_before"]) == (before, 0)
    after = item(inventory, 7)
    assert (after["available"], after["reserved"], after["recent_demand"]) == (before - 3, 3, 3)

    released = inventory.delete(f"/api/reservations/{hold['reservation_id']}")
    assert released.status_code == 200, released.text
    assert (released.json()["state"], released.json()["repeated"]) == ("released", False)
    restored = item(inventory, 7)
    assert (restored["available"], restored["reserved"]) == (before, 0)
    assert restored["recent_demand"] == 3  # released holds still count as demand

    again = inventory.delete(f"/api/reservations/{hold['reservation_id']}")
    assert (again.status_code, again.json()["repeated"]) == (200, True)
    commit = inventory.post(f"/api/reservations/{hold['reservation_id']}/commit")
    assert_error(commit, 409, "reservation_released")
    assert item(inventory, 7)["available"] == before


def test_reserve_then_commit(inventory: httpx.Client) -> None:
    before = item(inventory, 8)["available"]
    hold = reserve(inventory, 8, 2).json()
    rid = hold["reservation_id"]
    first = inventory.post(f"/api/reservations/{rid}/commit")
    assert first.status_code == 200, first.text
    assert (first.json()["state"], first.json()["repeated"]) == ("committed", False)
    second = inventory.post(f"/api/reservations/{rid}/commit")
    assert (second.status_code, second.json()["repeated"]) == (200, True)
    assert_error(inventory.delete(f"/api/reservations/{rid}"), 409, "reservation_committed")
    after = item(inventory, 8)
    assert (after["available"], after["reserved"]) == (before - 2, 0)  # sold, not returned
    assert inventory.get(f"/api/reservations/{rid}").json()["state"] == "committed"


def test_insufficient_stock_is_a_409_that_changes_nothing(inventory: httpx.Client) -> None:
    before = item(inventory, 9)
    err = assert_error(reserve(inventory, 9, before["available"] + 1), 409, "insufficient_stock")
    assert "details" not in err
    assert item(inventory, 9)["available"] == before["available"]
    assert_error(reserve(inventory, 1001, 1), 404, "product_not_found")
    assert_error(reserve(inventory, 9, 0), 422, "validation_failed")
    assert_error(reserve(inventory, 9, 1, colour="red"), 422, "validation_failed")


def test_all_the_stock_can_be_held_but_no_more(inventory: httpx.Client) -> None:
    available = item(inventory, 10)["available"]
    assert reserve(inventory, 10, available).status_code == 201
    assert item(inventory, 10)["available"] == 0
    assert_error(reserve(inventory, 10, 1), 409, "insufficient_stock")


def test_idempotency_key(inventory: httpx.Client) -> None:
    first = reserve(inventory, 11, 1, idempotency_key="refs-key-1")
    assert first.status_code == 201
    replay = reserve(inventory, 11, 1, idempotency_key="refs-key-1")
    assert replay.status_code == 200
    assert replay.json()["reservation_id"] == first.json()["reservation_id"]
    conflict = reserve(inventory, 11, 2, idempotency_key="refs-key-1")
    assert_error(conflict, 409, "idempotency_conflict")
    # Released: the same key and body make a new hold.
    inventory.delete(f"/api/reservations/{first.json()['reservation_id']}")
    fresh = reserve(inventory, 11, 1, idempotency_key="refs-key-1")
    assert fresh.status_code == 201
    assert fresh.json()["reservation_id"] != first.json()["reservation_id"]


def test_an_expired_hold_gives_its_units_back(inventory: httpx.Client) -> None:
    before = item(inventory, 12)["available"]
    rid = reserve(inventory, 12, 4, ttl_seconds=1).json()["reservation_id"]
    assert item(inventory, 12)["available"] == before - 4
    time.sleep(1.1)
    assert inventory.get(f"/api/reservations/{rid}").json()["state"] == "expired"
    assert item(inventory, 12)["available"] == before
    assert_error(inventory.post(f"/api/reservations/{rid}/commit"), 409, "reservation_expired")
    release = inventory.delete(f"/api/reservations/{rid}")
    assert (release.status_code, release.json()["state"]) == (200, "expired")


def test_unknown_reservation(inventory: httpx.Client) -> None:
    rid = "RES-" + "0" * 24
    assert_error(inventory.get(f"/api/reservations/{rid}"), 404, "reservation_not_found")
    assert_error(inventory.post(f"/api/reservations/{rid}/commit"), 404, "reservation_not_found")


def test_admin_restock(inventory: httpx.Client, admin: dict[str, str]) -> None:
    body = {"available": 5000}
    assert_error(inventory.put("/api/inventory/13", json=body), 401, "unauthorized")
    wrong = {"Authorization": "Bearer nope"}
    assert_error(inventory.put("/api/inventory/13", json=body, headers=wrong), 403, "forbidden")
    resp = inventory.put("/api/inventory/13", json=body, headers=admin)
    assert resp.status_code == 200, resp.text
    assert item(inventory, 13)["available"] == 5000


def test_batch(inventory: httpx.Client) -> None:
    resp = inventory.post("/api/inventory/batch", json={"ids": [123, 2000, 1, 123]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [i["product_id"] for i in body["items"]] == [123, 1]
    assert body["not_found"] == [2000]
