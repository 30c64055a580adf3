# Money helpers against services/contracts/pricing-vectors.json: the unit price rounds half
# away from zero, total = rounded unit x quantity, and JSON carries numbers, not strings.
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.money import dumps, round_money, to_decimal, total_price

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "services/contracts/pricing-vectors.json").read_text()
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_through_money_helpers(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    unit = round_money(Decimal(expected["unrounded"]))
    assert unit == to_decimal(expected["final_price"])
    total = total_price(to_decimal(expected["final_price"]), vector["input"].get("quantity", 1))
    assert total == to_decimal(expected["total_price"])
    assert orjson.loads(dumps({"t": total}))["t"] == expected["total_price"]


def test_rounding_is_half_away_from_zero() -> None:
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("-0.005")) == Decimal("-0.01")
    assert round_money(Decimal("2.675")) == Decimal("2.68")  # a float would give 2.67
    assert round_money(Decimal("1.004999")) == Decimal("1.00")


def test_to_decimal_keeps_the_json_text() -> None:
    assert to_decimal(164.35) == Decimal("164.35")
    assert to_decimal(0.1) + to_decimal(0.2) == Decimal("0.3")
    assert to_decimal(5) == Decimal(5)
    with pytest.raises(TypeError):
        to_decimal(True)


def test_total_is_rounded_unit_times_quantity() -> None:
    assert total_price(Decimal("164.35"), 2) == Decimal("328.70")
    assert total_price(Decimal("10.005"), 3) == Decimal("30.03")  # 10.01 x 3, not 30.015 -> 30.02
    assert dumps({"x": Decimal("328.70")}) == b'{"x":328.7}'
