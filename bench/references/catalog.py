"""The seed catalog (services/catalog/products.json) every reference loads at start."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / "services" / "catalog" / "products.json"


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    base_price: Decimal
    stock: int
    warehouse: str


def load(path: Path | None = None) -> list[Product]:
    """Products of the catalog; CATALOG_PATH overrides the repository's file."""
    path = path or Path(os.environ.get("CATALOG_PATH", DEFAULT_PATH))
    doc = json.loads(path.read_text())
    return [
        Product(
            id=int(p["id"]),
            # repr of a float is its shortest round-trip form: 173.0 -> "173.0", never 172.99...
            base_price=Decimal(repr(p["base_price"])).quantize(Decimal("0.01")),
            stock=int(p["stock"]),
            warehouse=str(p["warehouse"]),
        )
        for p in doc["products"]
    ]
