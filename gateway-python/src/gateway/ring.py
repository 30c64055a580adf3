# Consistent-hash ring mapping a product to its inventory shard(s), exactly as
# services/contracts/ring.md defines it (ring-vectors.json is the judge), so the gateway,
# pricing (svc-client ShardRing) and inventory (Go) always agree on the owner.
from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

VIRTUAL_NODES = 150
# env.md's ASCII whitespace; bare str.strip() would also take Unicode spaces and \x1c-\x1f,
# which the Go and Rust rings keep.
_ASCII_WS = " \t\n\r\x0b\x0c"


def ring_hash(key: str) -> int:
    """First 8 bytes of md5(key) as a big-endian integer (the shared definition)."""
    return int.from_bytes(hashlib.md5(key.encode(), usedforsecurity=False).digest()[:8], "big")


class ShardRing:
    """Shard `s` owns the points h("{s}:{i}") for i in 0..150; product p belongs to the
    shard of the first point >= h(str(p)), wrapping around; on equal points the name that
    sorts first wins; its r owners continue clockwise over distinct shards."""

    def __init__(self, shards: Iterable[str]) -> None:
        names: list[str] = []
        for raw in shards:
            name = raw.strip(_ASCII_WS)
            if name and name not in names:
                names.append(name)
        self.shards = names
        # Sorting (point, name) pairs puts the name that sorts first ahead on equal points
        # (str order is code point order, the same as UTF-8 byte order) whatever the list order.
        points = sorted(
            (ring_hash(f"{name}:{i}"), name) for name in names for i in range(VIRTUAL_NODES)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [name for _, name in points]

    def _start(self, key: str) -> int | None:
        if not self._hashes:
            return None
        at = bisect.bisect_left(self._hashes, ring_hash(key))
        return at if at < len(self._hashes) else 0

    def shard_for(self, key: str) -> str | None:
        """The shard of `key` (a product id in decimal); None only for an empty ring."""
        at = self._start(key)
        return None if at is None else self._owners[at]

    def shard_for_product(self, product_id: int) -> str | None:
        return self.shard_for(str(product_id))

    def owners(self, product_id: int, replicas: int) -> list[str]:
        """The min(replicas, shards) owners: the product's shard, then the next distinct
        shards clockwise. Empty for an empty ring or replicas <= 0."""
        want = min(replicas, len(self.shards))
        at = self._start(str(product_id))
        found: list[str] = []
        if at is None or want <= 0:
            return found
        count = len(self._owners)
        # Every shard has points, so one turn of the ring meets all of them.
        for step in range(count):
            name = self._owners[(at + step) % count]
            if name not in found:
                found.append(name)
                if len(found) == want:
                    break
        return found
