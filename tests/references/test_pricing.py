# The Python pricing reference over HTTP: every vector of services/contracts/pricing-vectors.json
# through POST /api/calculate_price, the invalid ones as 422s naming the field, and the
# price book of the seed catalog.
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from conftest import assert_error, pricing_vectors

VECTORS = pricing_vectors()
FIELDS = (
    "base_price",
    "final_price",
    "discount_percent",
    "price_tier",
    "scarcity_factor",
    "demand_factor",
)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector(pricing: httpx.Client, vector: dict[str, Any]) -> None:
    resp = pricing.post("/api/calculate_price", json=vector["input"])
    assert resp.status_code == 200, resp.text
    got = resp.json()
    expected = vector["expected"]
    assert {k: got[k] for k in FIELDS} == {k: expected[k] for k in FIELDS}
    assert got["product_id"] == vector["input"]["product_id"]
    assert got["currency"] == "USD"
    # total = rounded unit price x quantity (the order's total), from the answer's unit price.
    total = (Decimal(repr(got["final_price"])) * vector["input"]["quantity"]).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert float(total) == expected["total_price"]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vector(pricing: httpx.Client, vector: dict[str, Any]) -> None:
    resp = pricing.post("/api/calculate_price", json=vector["input"])
    err = assert_error(resp, vector["status"], vector["code"])
    assert vector["field"] in {d["field"] for d in err["details"]}


def test_vectors_in_one_batch(pricing: httpx.Client) -> None:
    items = [v["input"] for v in VECTORS["vectors"]]
    resp = pricing.post("/api/calculate_prices", json={"items": items})
    assert resp.status_code == 200, resp.text
    finals = [r["final_price"] for r in resp.json()["results"]]
    assert finals == [v["expected"]["final_price"] for v in VECTORS["vectors"]]


def test_seed_product_from_the_price_book(pricing: httpx.Client) -> None:
    resp = pricing.post("/api/calculate_price", json={"product_id": 123, "quantity_available": 223})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "product_id": 123,
        "base_price": 173.0,
        "final_price": 164.35,
        "discount_percent": 5.0,
        "price_tier": "basic",
        "scarcity_factor": 1.0,
        "demand_factor": 1.0,
        "currency": "USD",
    }


def test_unknown_product_without_a_price(pricing: httpx.Client) -> None:
    resp = pricing.post(
        "/api/calculate_price", json={"product_id": 999_999, "quantity_available": 5}
    )
    assert_error(resp, 404, "product_not_found")


def test_body_that_is_not_json(pricing: httpx.Client) -> None:
    resp = pricing.post(
        "/api/calculate_price",
        content=b'{"product_id": 1,',
        headers={"content-type": "application/json"},
    )
    assert_error(resp, 400, "malformed_request")
