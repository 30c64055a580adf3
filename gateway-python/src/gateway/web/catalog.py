# The storefront's product names: the seed catalog (services/catalog/products.json, the file
# pricing and inventory seed from) read once, for the grid's paging and its search by id and
# name. Prices and stock are never taken from here: the pages ask pricing for them live.
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger("gateway.web")
CATALOG_REL = Path("services") / "catalog" / "products.json"
MAX_QUERY_CHARS = 100


@dataclass(frozen=True, slots=True)
class Page:
    ids: list[int]
    number: int  # 1-based
    pages: int
    total: int


class Catalog:
    """Product ids and names in id order; empty when the catalog file is not found (the grid
    then pages over nothing and only a search by id finds a product)."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = dict(sorted(names.items()))
        self.ids = list(self.names)
        self._folded = [(pid, name.casefold()) for pid, name in self.names.items()]

    @classmethod
    def load(cls, candidates: list[Path] | None = None) -> Catalog:
        # Like pricing and inventory: from the working directory (make run, the images),
        # else from this source checkout.
        paths = candidates or [Path.cwd() / CATALOG_REL, Path(__file__).parents[4] / CATALOG_REL]
        for path in paths:
            try:
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            return cls({int(p["id"]): str(p["name"]) for p in data["products"]})
        log.warning("catalog_not_found", extra={"paths": [str(p) for p in paths]})
        return cls({})

    def name(self, product_id: int) -> str:
        return self.names.get(product_id, f"Product {product_id}")

    def search(self, query: str) -> list[int]:
        """Ids matching `query`: digits are a product id (any id in range, the catalog's or
        not); words match names case-insensitively, every word somewhere in the name."""
        query = query.strip()
        if not query:
            return self.ids
        if query.isascii() and query.isdigit():
            return [int(query)] if len(query) <= 10 and 1 <= int(query) <= 10**9 else []
        words = query.casefold().split()
        return [pid for pid, name in self._folded if all(w in name for w in words)]

    @staticmethod
    def page(ids: list[int], number: int, size: int) -> Page:
        pages = max(1, -(-len(ids) // size))
        number = min(number, pages)
        start = (number - 1) * size
        return Page(ids[start : start + size], number, pages, len(ids))
