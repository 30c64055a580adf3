# The router's view of the inventory shards (services/contracts/ring.md, "Routers"): the ring
# record's members and, per member, the URL of its live instance from the registry. The view
# is pure data built by routes(), which router-vectors.json pins; ShardDirectory keeps it
# fresh from Redis every 2 s and on demand after a 421, and never drops a view it had
# because Redis is away.
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.registry import Entry, Registry, RegistryUnavailable
from gateway.ring import ShardRing

log = logging.getLogger("gateway.shards")

RING_KEY = "polyshop:ring:inventory"
REFRESH_S = 2.0
# [0-9], not \d: Python's \d also matches other scripts' digits, which Go and Rust do not.
_INSTANT = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?Z"
)


def started_rank(started_at: str) -> tuple[int, str, str]:
    """Orders started_at values as instants: whole seconds, then the fraction padded to 9
    digits. Anything not of the registry's UTC form ranks below every value that is."""
    m = _INSTANT.fullmatch(started_at)
    if m is None:
        return (0, "", "")
    return (1, m.group(1), (m.group(2) or "").ljust(9, "0"))


def _newer(a: Entry, b: Entry) -> bool:
    ra, rb = started_rank(a.started_at), started_rank(b.started_at)
    return ra > rb or (ra == rb and a.instance_id < b.instance_id)


def chosen(members: Iterable[str], entries: Iterable[Entry]) -> dict[str, Entry | None]:
    """Each member's live inventory instance that started last (a restart is used at once,
    before its predecessor's entry expires); None when it has none."""
    wanted = list(members)
    best: dict[str, Entry] = {}
    for e in entries:
        if e.name != "inventory" or e.shard is None or e.shard not in wanted:
            continue
        current = best.get(e.shard)
        if current is None or _newer(e, current):
            best[e.shard] = e
    return {m: best.get(m) for m in wanted}


def routes(members: Iterable[str], entries: Iterable[Entry]) -> dict[str, str | None]:
    """Each member's URL (router-vectors.json's "routes")."""
    return {m: (e.url if e else None) for m, e in chosen(members, entries).items()}


@dataclass(frozen=True)
class View:
    """One reading of the record and the registry."""

    epoch: int
    ring: ShardRing
    urls: dict[str, str | None]
    # The instance behind each URL: a restarted shard is a new instance, whose upstream
    # (and breaker) starts afresh even at the same URL.
    instances: dict[str, str | None]

    # Live shards the record does not name yet (a rebalance's new shard): a 421 may name
    # one before the record does, and the call can follow it there.
    others: dict[str, str]

    @classmethod
    def of(cls, epoch: int, members: list[str], entries: Iterable[Entry]) -> View:
        ring = ShardRing(members)
        live = list(entries)
        registered = {e.shard for e in live if e.name == "inventory" and e.shard is not None}
        picked = chosen([*ring.shards, *sorted(registered - set(ring.shards))], live)
        urls = {m: (e.url if e else None) for m, e in picked.items() if m in ring.shards}
        others = {m: e.url for m, e in picked.items() if e and m not in ring.shards}
        instances = {m: (e.instance_id if e else None) for m, e in picked.items()}
        return cls(epoch, ring, urls, instances, others)

    def url_of(self, shard: str) -> str | None:
        return self.urls.get(shard) or self.others.get(shard)

    def owner(self, product_id: int) -> str | None:
        return self.ring.shard_for_product(product_id)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class ShardDirectory:
    """The current View, or None while there is no ring record (routers then use
    INVENTORY_URLS). Reads the record and the registry through the registry's client."""

    def __init__(self, registry: Registry, interval_s: float = REFRESH_S) -> None:
        self.registry = registry
        self.view: View | None = None
        self._interval_s = interval_s
        self._lock = asyncio.Lock()
        self._generation = 0
        self._failing = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> View | None:
        try:
            raw = await self.registry.redis.hgetall(RING_KEY)
        except (RedisError, OSError, TimeoutError) as exc:
            raise RegistryUnavailable(str(exc) or type(exc).__name__) from None
        record = {_text(k): _text(v) for k, v in raw.items()}
        if "members" not in record:
            return None
        try:
            epoch = int(record.get("epoch", "0"))
        except ValueError:
            epoch = 0
        _, entries = await self.registry.live()
        return View.of(epoch, record["members"].split(","), entries)

    async def refresh(self) -> View | None:
        """Reads the view again. Callers that arrive while a read is running share it
        (a burst of 421s costs one read); a failed read keeps the view there was."""
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return self.view
            try:
                view = await self._read()
            except RegistryUnavailable as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("shard_view_unavailable", extra={"error": str(exc)})
                return self.view
            if self._failing:
                self._failing = False
                log.info("shard_view_restored")
            self._announce(view)
            self.view = view
            self._generation += 1
            return view

    def _announce(self, view: View | None) -> None:
        before = self.view
        if view is None or (
            before is not None
            and (before.urls, before.instances, before.others)
            == (view.urls, view.instances, view.others)
        ):
            return
        log.info(
            "shard_view",
            extra={"epoch": view.epoch, "routes": {k: v or "down" for k, v in view.urls.items()}},
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
                return

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
