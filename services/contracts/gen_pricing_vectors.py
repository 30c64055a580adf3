#!/usr/bin/env python3
"""Writes services/contracts/pricing-vectors.json: the pricing rules as input/output pairs.

The Rust engine and the gateway both run every vector. The expected values are computed
here with Python's decimal module, independently of either implementation; the notable
ones (seed example, x.xx5 rounding) are also written out by hand in `name`.
Run with --check in CI to prove the checked-in file matches this script.
"""

from __future__ import annotations

import json
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

OUT = Path(__file__).with_name("pricing-vectors.json")
CENT = Decimal("0.01")


def scarcity(available: int) -> Decimal:
    if available < 10:
        return Decimal("1.5")
    if available < 50:
        return Decimal("1.2")
    return Decimal("1.0")


def demand(recent: int) -> Decimal:
    return min(Decimal("1.00") + Decimal("0.01") * recent, Decimal("1.25"))


def tier(quantity: int) -> tuple[str, Decimal]:
    if quantity >= 100:
        return "platinum", Decimal("20")
    if quantity >= 50:
        return "gold", Decimal("15")
    if quantity >= 10:
        return "silver", Decimal("10")
    return "basic", Decimal("5")


def expect(base: str, available: int, quantity: int, recent: int) -> dict[str, object]:
    b = Decimal(base)
    name, pct = tier(quantity)
    raw = b * demand(recent) * scarcity(available) * (1 - pct / 100)
    unit = raw.quantize(CENT, ROUND_HALF_UP)  # half away from zero for positive amounts
    return {
        "base_price": float(b),
        "final_price": float(unit),
        "discount_percent": float(pct),
        "price_tier": name,
        "scarcity_factor": float(scarcity(available)),
        "demand_factor": float(demand(recent)),
        "total_price": float((unit * quantity).quantize(CENT, ROUND_HALF_UP)),
        "unrounded": str(raw),
    }


# (name, base_price, quantity_available, quantity, recent_demand)
CASES = [
    ("seed: product 123, 223 units, 1 unit -> 164.35 basic 5%", "173.00", 223, 1, 0),
    ("seed: order of 2 of product 123 -> 164.35 x 2 = 328.70", "173.00", 223, 2, 0),
    ("scarcity edge: 0 available -> 1.5", "100.00", 0, 1, 0),
    ("scarcity edge: 9 available -> 1.5", "100.00", 9, 1, 0),
    ("scarcity edge: 10 available -> 1.2", "100.00", 10, 1, 0),
    ("scarcity edge: 49 available -> 1.2", "100.00", 49, 1, 0),
    ("scarcity edge: 50 available -> 1.0", "100.00", 50, 1, 0),
    ("scarcity: 10^9 available -> 1.0", "100.00", 1_000_000_000, 1, 0),
    ("demand 0 -> 1.00", "100.00", 500, 1, 0),
    ("demand 1 -> 1.01", "100.00", 500, 1, 1),
    ("demand 24 -> 1.24", "100.00", 500, 1, 24),
    ("demand 25 -> 1.25 (cap reached)", "100.00", 500, 1, 25),
    ("demand 26 -> capped at 1.25", "100.00", 500, 1, 26),
    ("demand huge (10^9) -> capped at 1.25", "100.00", 500, 1, 1_000_000_000),
    ("tier edge: quantity 1 basic", "80.00", 500, 1, 0),
    ("tier edge: quantity 9 basic", "80.00", 500, 9, 0),
    ("tier edge: quantity 10 silver", "80.00", 500, 10, 0),
    ("tier edge: quantity 49 silver", "80.00", 500, 49, 0),
    ("tier edge: quantity 50 gold", "80.00", 500, 50, 0),
    ("tier edge: quantity 99 gold", "80.00", 500, 99, 0),
    ("tier edge: quantity 100 platinum", "80.00", 500, 100, 0),
    ("tier: quantity 10000 (max) platinum", "80.00", 20_000, 10_000, 0),
    ("rounding: 0.30 x 0.95 = 0.285 -> 0.29 (half away from zero, not half-even)", "0.30", 500, 1, 0),
    ("rounding: 1.50 x 0.95 = 1.425 -> 1.43 (binary float gives 1.42)", "1.50", 500, 1, 0),
    ("rounding: 0.10 x 0.95 = 0.095 -> 0.10", "0.10", 500, 1, 0),
    ("rounding: 2.10 x 0.95 = 1.995 -> 2.00", "2.10", 500, 1, 0),
    ("rounding: 0.50 x 0.95 = 0.475 -> 0.48", "0.50", 500, 1, 0),
    ("rounding: 1.05 x 1.2 x 0.95 = 1.197 -> 1.20", "1.05", 20, 1, 0),
    ("rounding: 0.15 x 0.90 = 0.135 -> 0.14 silver", "0.15", 500, 10, 0),
    ("rounding: 0.01 (min) x 0.95 = 0.0095 -> 0.01", "0.01", 500, 1, 0),
    ("rounding: 0.01 x 0.80 = 0.008 -> 0.01", "0.01", 500, 100, 0),
    ("rounding: 0.03 x 1.01 x 0.95 = 0.028785 -> 0.03", "0.03", 500, 1, 1),
    ("combined: scarce 9, demand 25, platinum", "999.99", 9, 100, 25),
    ("combined: scarce 49, demand 10, gold", "19.99", 49, 50, 10),
    ("combined: max base 10^6, 0 available, demand capped", "1000000.00", 0, 1, 1000),
    ("combined: max base 10^6, platinum 10000 units", "1000000.00", 1_000_000_000, 10_000, 0),
    ("total: 3 x 33.33 basic -> unit 31.66, total 94.98", "33.33", 500, 3, 0),
    ("total: 7 x 0.30 -> unit 0.29, total 2.03 (rounded unit x quantity)", "0.30", 500, 7, 0),
    ("total: 11 x 1.50 silver -> 1.35 x 11 = 14.85", "1.50", 500, 11, 0),
    ("total: 9 units of 10.05, demand 3", "10.05", 500, 9, 3),
    ("demand and scarcity: 1.24 x 1.5 x 0.95", "57.77", 3, 1, 24),
    ("silver with scarcity 1.2 and demand 1.05", "250.00", 12, 20, 5),
]

# Inputs outside docs/DESIGN.md's bounds: every implementation answers 422 validation_failed
# naming the field.
INVALID = [
    ("quantity 0", {"product_id": 1, "quantity_available": 10, "quantity": 0}, "quantity"),
    ("quantity negative", {"product_id": 1, "quantity_available": 10, "quantity": -1}, "quantity"),
    ("quantity above 10,000", {"product_id": 1, "quantity_available": 10, "quantity": 10_001}, "quantity"),
    ("stock negative", {"product_id": 1, "quantity_available": -1}, "quantity_available"),
    ("stock above 10^9", {"product_id": 1, "quantity_available": 1_000_000_001}, "quantity_available"),
    ("demand negative", {"product_id": 1, "quantity_available": 10, "recent_demand": -1}, "recent_demand"),
    ("demand above 10^9", {"product_id": 1, "quantity_available": 10, "recent_demand": 1_000_000_001},
     "recent_demand"),
    ("base price 0", {"product_id": 1, "quantity_available": 10, "base_price": 0}, "base_price"),
    ("base price below a cent", {"product_id": 1, "quantity_available": 10, "base_price": 0.001}, "base_price"),
    ("base price above 10^6", {"product_id": 1, "quantity_available": 10, "base_price": 1_000_000.01},
     "base_price"),
    ("product id 0", {"product_id": 0, "quantity_available": 10}, "product_id"),
    ("product id above 10^9", {"product_id": 1_000_000_001, "quantity_available": 10}, "product_id"),
    ("quantity_available missing", {"product_id": 1}, "quantity_available"),
    ("product_id missing", {"quantity_available": 10}, "product_id"),
    ("quantity a string", {"product_id": 1, "quantity_available": 10, "quantity": "two"}, "quantity"),
    ("quantity fractional", {"product_id": 1, "quantity_available": 10, "quantity": 1.5}, "quantity"),
]


def build() -> dict[str, object]:
    vectors = []
    for name, base, available, quantity, recent in CASES:
        vectors.append({
            "name": name,
            "input": {"product_id": 1, "base_price": float(Decimal(base)), "quantity_available": available,
                      "quantity": quantity, "recent_demand": recent},
            "expected": expect(base, available, quantity, recent),
        })
    invalid = [{"name": n, "input": body, "status": 422, "code": "validation_failed", "field": field}
               for n, body, field in INVALID]
    return {
        "description": "Pricing rules of docs/DESIGN.md as vectors. final_price = round_half_away_from_zero("
                       "base_price x demand_factor x scarcity_factor x (1 - discount_percent/100), 2); "
                       "total_price = final_price x quantity. `unrounded` is informative.",
        "vectors": vectors,
        "invalid": invalid,
    }


def main() -> int:
    text = json.dumps(build(), indent=1) + "\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print("pricing-vectors.json is stale: run python3 services/contracts/gen_pricing_vectors.py",
                  file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
