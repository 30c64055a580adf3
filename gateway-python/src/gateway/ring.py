# Consistent-hash ring mapping a product to one inventory shard (INVENTORY_URLS), computed
# exactly as svc-client's ShardRing so the gateway and pricing always pick the same shard.
from __future__ import annotations

import bisect
import hashlib

VIRTUAL_NODES = 150


def ring_hash(key: str) -> int:
    """First 8 bytes of md5(key) as a big-endian integer (the shared definition)."""
    return int.from_bytes(hashlib.md5(key.encode(), usedforsecurity=False).digest()[:8], "big")


class ShardRing:
    """Shard `s` owns the points h("{s}:{i}") for i in 0..150; a key belongs to the shard
    of the first point >= h(key), wrapping around; ties go to the smaller shard name."""

    def __init__(self, shards: list[str]) -> None:
        names: list[str] = []
        for raw in shards:
            name = raw.strip()
            if name and name not in names:
                names.append(name)
        self.shards = names
        points = sorted(
            (ring_hash(f"{name}:{i}"), name) for name in names for i in range(VIRTUAL_NODES)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [name for _, name in points]

    def shard_for(self, key: str) -> str | None:
        if not self._hashes:
            return None
        at = bisect.bisect_left(self._hashes, ring_hash(key))
        return self._owners[at if at < len(self._owners) else 0]

    def shard_for_product(self, product_id: int) -> str | None:
        return self.shard_for(str(product_id))
