#!/usr/bin/env python3
"""Writes services/contracts/ring-vectors.json: the inventory shard ring as input/output pairs.

The Go (inventory-go/internal/ring), Rust (svc-client ShardRing) and Python (gateway ring.py)
rings all run every vector. The owners are computed here from ring.md's rule with hashlib,
independently of the three implementations. Deterministic (fixed seed), so CI can prove the
checked-in file is fresh: `python3 services/contracts/gen_ring_vectors.py --check`.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).with_name("ring-vectors.json")
VIRTUAL_NODES = 150
SEED = 20261202
NAMES = ["inv-a", "inv-b", "inv-c", "inv-d", "inv-e", "inv-f", "inv-g"]
# Keys every set is asked about: the bounds of a product id, the seed example, and a few
# whose hashes fall near the ends of the ring (wrap-around).
FIXED_KEYS = [1, 2, 123, 999, 1000, 10**9]


def h(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode(), usedforsecurity=False).digest()[:8], "big")


def owners(nodes: list[str], key: int, replicas: int) -> list[str]:
    # ring.md: the first point >= h(key), wrapping; ties by name; replicas are the next
    # distinct shards clockwise from that point.
    points = sorted((h(f"{n}:{i}"), n) for n in set(nodes) for i in range(VIRTUAL_NODES))
    hashes = [p for p, _ in points]
    at = bisect.bisect_left(hashes, h(str(key)))
    found: list[str] = []
    for step in range(len(points)):
        name = points[(at + step) % len(points)][1]
        if name not in found:
            found.append(name)
            if len(found) == min(replicas, len(set(nodes))):
                break
    return found


def extreme_keys(rng: random.Random) -> list[int]:
    # Keys hashing above every point of a 1-node ring wrap to the lowest point; search a
    # few so wrap-around is exercised, not left to chance.
    top = max(h(f"inv-a:{i}") for i in range(VIRTUAL_NODES))
    low = min(h(f"inv-a:{i}") for i in range(VIRTUAL_NODES))
    found: list[int] = []
    key = 1
    while len(found) < 4 and key < 2_000_000:
        value = h(str(key))
        if value > top or value < low:
            found.append(key)
        key += rng.randint(1, 50)
    return found


def node_sets(rng: random.Random) -> list[list[str]]:
    sets: list[list[str]] = []
    for size in range(1, 8):
        sets.append(NAMES[:size])  # additions: a, ab, abc, ...
    for size in range(2, 8):
        members = NAMES[:size]
        for gone in members:  # removals: each member of each set taken out once
            rest = [n for n in members if n != gone]
            if rest not in sets:
                sets.append(rest)
    # Names as routers see them in static mode (URLs), listed out of order with a duplicate
    # the caller dropped: the owner must not depend on list order.
    urls = [f"http://127.0.0.1:{8102 + i}" for i in range(3)]
    sets.append(urls)
    sets.append([urls[2], urls[0], urls[1]])
    sets.append(["inventory"])
    rng.shuffle(sets)
    return sets


def build() -> dict[str, object]:
    rng = random.Random(SEED)
    keys_pool = FIXED_KEYS + extreme_keys(rng)
    vectors = []
    for nodes in node_sets(rng):
        keys = keys_pool + [rng.randint(1, 10**9) for _ in range(4)]
        for key in keys:
            replicas = rng.choice([1, 1, 1, 2, 3])
            vectors.append(
                {"nodes": nodes, "key": key, "replicas": replicas, "owners": owners(nodes, key, replicas)}
            )
    return {"virtual_nodes": VIRTUAL_NODES, "vectors": vectors}


def render(doc: dict[str, object]) -> str:
    vectors = doc["vectors"]
    assert isinstance(vectors, list)
    lines = [json.dumps(v, separators=(", ", ": ")) for v in vectors]
    return (
        '{"virtual_nodes": %d, "vectors": [\n  ' % doc["virtual_nodes"]
        + ",\n  ".join(lines)
        + "\n]}\n"
    )


def main() -> int:
    doc = build()
    text = render(doc)
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print("services/contracts/ring-vectors.json is stale: run "
                  "python3 services/contracts/gen_ring_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    vectors = doc["vectors"]
    assert isinstance(vectors, list)
    print(f"{OUT}: {len(vectors)} vectors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
