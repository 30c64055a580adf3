"""The pricing rules of docs/DESIGN.md in `decimal`, free of HTTP.

final = base x demand_factor x scarcity_factor x (1 - discount), rounded to cents half away
from zero at the end; total = rounded unit price x quantity, rounded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MAX_ID = 1_000_000_000
MAX_UNITS = 1_000_000_000
MAX_QUANTITY = 10_000
MIN_PRICE = 0.01
MAX_PRICE = 1_000_000.0

CENT = Decimal("0.01")
ONE = Decimal(1)
HUNDRED = Decimal(100)
DEMAND_STEP = Decimal("0.01")
DEMAND_CAP = Decimal("1.25")

# (smallest quantity, tier, discount percent), largest first.
TIERS = (
    (100, "platinum", Decimal(20)),
    (50, "gold", Decimal(15)),
    (10, "silver", Decimal(10)),
    (1, "basic", Decimal(5)),
)


@dataclass(frozen=True, slots=True)
class Quote:
    base_price: Decimal
    final_price: Decimal
    discount_percent: Decimal
    price_tier: str
    scarcity_factor: Decimal
    demand_factor: Decimal

    def total(self, quantity: int) -> Decimal:
        return round_cents(self.final_price * quantity)


def round_cents(amount: Decimal) -> Decimal:
    # ROUND_HALF_UP in `decimal` is half away from zero (0.285 -> 0.29, -0.285 -> -0.29).
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: float) -> Decimal:
    """A JSON number as money: the digits the client wrote, kept to cents."""
    return round_cents(Decimal(repr(value)))


def scarcity_factor(available: int) -> Decimal:
    if available < 10:
        return Decimal("1.5")
    if available < 50:
        return Decimal("1.2")
    return ONE


def demand_factor(recent_demand: int) -> Decimal:
    return min(ONE + DEMAND_STEP * recent_demand, DEMAND_CAP)


def tier(quantity: int) -> tuple[str, Decimal]:
    for smallest, name, discount in TIERS:
        if quantity >= smallest:
            return name, discount
    return TIERS[-1][1], TIERS[-1][2]


def quote(base_price: Decimal, available: int, quantity: int = 1, recent_demand: int = 0) -> Quote:
    name, discount = tier(quantity)
    scarcity = scarcity_factor(available)
    demand = demand_factor(recent_demand)
    unrounded = base_price * demand * scarcity * (ONE - discount / HUNDRED)
    return Quote(
        base_price=base_price,
        final_price=round_cents(unrounded),
        discount_percent=discount,
        price_tier=name,
        scarcity_factor=scarcity,
        demand_factor=demand,
    )
