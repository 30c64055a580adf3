# Request/response models: strict integers, the contract's bounds, money serialised as numbers.
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.models import Order, OrderRequest


@pytest.mark.parametrize(
    "body",
    [
        {"product_id": 123, "quantity": 1},
        {"product_id": 1, "quantity": 10_000},
        {"product_id": 1_000_000_000, "quantity": 5, "note": "extra fields are ignored"},
    ],
)
def test_order_request_accepts(body: dict[str, Any]) -> None:
    req = OrderRequest.model_validate(body)
    assert (req.product_id, req.quantity) == (body["product_id"], body["quantity"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 1}, "product_id"),
        ({"product_id": 1}, "quantity"),
        ({"product_id": 0, "quantity": 1}, "product_id"),
        ({"product_id": 1_000_000_001, "quantity": 1}, "product_id"),
        ({"product_id": 1, "quantity": 0}, "quantity"),
        ({"product_id": 1, "quantity": 10_001}, "quantity"),
        ({"product_id": "1", "quantity": 1}, "product_id"),
        ({"product_id": 1.0, "quantity": 1}, "product_id"),
        ({"product_id": True, "quantity": 1}, "product_id"),
        ({"product_id": 1, "quantity": None}, "quantity"),
        ({"product_id": 1, "quantity": [1]}, "quantity"),
    ],
)
def test_order_request_refuses(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        OrderRequest.model_validate(body)
    assert exc.value.errors()[0]["loc"] == (field,)


def test_order_money_is_a_rounded_number() -> None:
    order = Order(
        order_id=1,
        product_id=123,
        quantity=2,
        unit_price=Decimal("164.35"),
        total_price=Decimal("328.700"),
        reservation_id="RES-1",
        status="confirmed",
        processing_time_ms=1.5,
    )
    data = order.model_dump(mode="json")
    assert data["unit_price"] == 164.35
    assert data["total_price"] == 328.7
