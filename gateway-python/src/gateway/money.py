# Money arithmetic of the gateway: Decimal only, cents rounded half away from zero, and the
# orjson hook that writes Decimals as JSON numbers (docs/DESIGN.md: money is a number).
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

CENT = Decimal("0.01")


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """A JSON number as parsed by orjson (float) -> the Decimal it was written as."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not money")
    # repr() of a float is the shortest string that round-trips, i.e. the JSON text.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def round_money(value: Decimal) -> Decimal:
    # decimal's ROUND_HALF_UP rounds ties away from zero (-0.005 -> -0.01), as docs/DESIGN.md asks.
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def total_price(unit_price: Decimal, quantity: int) -> Decimal:
    """total = rounded unit price x quantity (the unit is rounded first, as pricing does)."""
    return round_money(round_money(unit_price) * quantity)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float(round_money(obj))
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)
