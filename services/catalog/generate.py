#!/usr/bin/env python3
"""Generates services/catalog/products.json, the one seed catalog all three services load.

Deterministic (fixed seed, stdlib only) so the checked-in file can be regenerated and
diffed in CI: `python3 services/catalog/generate.py --check`.

`--size N --out PATH` writes a bigger (or smaller) catalog for make bench's cost-of-growth
pass. Product i is the same in every size (one random stream, drawn in id order), so the
first 1,000 products of any catalog are the checked-in ones.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

OUT = Path(__file__).with_name("products.json")
SEED = 20261123
COUNT = 1000

WAREHOUSES = [
    {"id": "WH-1", "name": "Rotterdam", "region": "eu-west"},
    {"id": "WH-2", "name": "Frankfurt", "region": "eu-central"},
    {"id": "WH-3", "name": "Newark", "region": "us-east"},
    {"id": "WH-4", "name": "Reno", "region": "us-west"},
    {"id": "WH-5", "name": "Singapore", "region": "ap-southeast"},
]

ADJECTIVES = ["Compact", "Deluxe", "Rugged", "Silent", "Smart", "Classic", "Modular", "Portable"]
NOUNS = [
    "Kettle",
    "Headphones",
    "Backpack",
    "Desk Lamp",
    "Keyboard",
    "Tent",
    "Drill",
    "Monitor",
    "Blender",
    "Router",
    "Jacket",
    "Camera",
    "Speaker",
    "Chair",
    "Watch",
    "Bicycle Light",
]

# Product 123 is the seed document's worked example; every language's tests rely on it.
FIXED = {123: {"base_price": Decimal("173.00"), "stock": 223, "warehouse": "WH-4"}}


def stock_for(rng: random.Random) -> int:
    # docs/DESIGN.md: about 10 % under 10 units and 20 % under 50, the rest up to 1,000,
    # so every scarcity band of the pricing rules shows up in real traffic.
    roll = rng.random()
    if roll < 0.10:
        return rng.randint(0, 9)
    if roll < 0.20:
        return rng.randint(10, 49)
    return rng.randint(50, 1000)


def build(count: int = COUNT) -> dict[str, object]:
    rng = random.Random(SEED)
    products = []
    for pid in range(1, count + 1):
        price = (Decimal(rng.randint(199, 99_999)) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
        item = {
            "id": pid,
            "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {pid}",
            "base_price": price,
            "stock": stock_for(rng),
            "warehouse": rng.choice(WAREHOUSES)["id"],
        }
        item.update(FIXED.get(pid, {}))
        products.append(item)
    return {"version": 1, "currency": "USD", "warehouses": WAREHOUSES, "products": products}


def render(doc: dict[str, object]) -> str:
    def default(value: object) -> float:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(type(value))

    # One product per line keeps diffs of the checked-in file readable.
    products = doc["products"]
    assert isinstance(products, list)
    head = {k: v for k, v in doc.items() if k != "products"}
    lines = [json.dumps(p, default=default, separators=(",", ":")) for p in products]
    body = json.dumps(head, indent=2)[:-2]
    return body + ',\n  "products": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if products.json is stale")
    parser.add_argument("--size", type=int, default=COUNT, help=f"products (default {COUNT})")
    parser.add_argument("--out", type=Path, help="write here instead of products.json")
    args = parser.parse_args()
    # The checked-in file is the 1,000-product catalog; another size never overwrites it.
    if args.size != COUNT and (args.out is None or args.out.resolve() == OUT.resolve()):
        parser.error("--size other than 1000 needs --out pointing elsewhere")
    if not 1 <= args.size <= 1_000_000_000:
        parser.error("--size must be 1 .. 10^9 (product ids are bounded so)")
    text = render(build(args.size))
    if args.check:
        if OUT.read_text() != text:
            print(
                "services/catalog/products.json is stale: run python3 services/catalog/generate.py",
                file=sys.stderr,
            )
            return 1
        return 0
    (args.out or OUT).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
