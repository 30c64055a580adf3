# The service registry of services/contracts/ring.md ("Registry (Redis)"): this gateway's
# entry, a heartbeat task that registers it every 2 s and deregisters it on shutdown, and the
# list of live instances behind GET /api/registry. Every call runs registry.lua, a copy of
# services/contracts/registry.lua shipped in the package (an installed gateway cannot reach
# services/contracts) that a test holds byte-equal. A Redis that is away never reaches a
# request: the heartbeat logs once per outage and registers again when Redis answers.
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from redis.exceptions import RedisError

from gateway.redis_store import connect

log = logging.getLogger("gateway.registry")

HASH_KEY = "polyshop:registry"
EXPIRY_KEY = "polyshop:registry:expiry"
INTERVAL_S = 2.0  # the script gives each beat 6 s: two lost beats still leave the entry live
SCRIPT = (files("gateway") / "registry.lua").read_bytes().decode("utf-8")


class RegistryUnavailable(Exception):
    """The registry's Redis did not answer."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One instance as the registry holds it (ring.md)."""

    name: str
    instance_id: str
    url: str
    language: str
    version: str
    started_at: str
    shard: str | None = None

    @property
    def field(self) -> str:
        return f"{self.name}/{self.instance_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Entry | None:
        """The entry, or None for a value that is not one (skipped, never a 500)."""
        try:
            data = json.loads(raw)
            return cls(
                name=str(data["name"]),
                instance_id=str(data["instance_id"]),
                url=str(data["url"]),
                language=str(data["language"]),
                version=str(data["version"]),
                started_at=str(data["started_at"]),
                shard=None if data.get("shard") is None else str(data["shard"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


def gateway_entry(url: str, version: str) -> Entry:
    """This process's entry: a new random instance id (a restarted gateway never shares a
    field with its predecessor), started now."""
    started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Entry("gateway", secrets.token_hex(8), url, "python", version, started)


def sorted_entries(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.name, e.instance_id))


class Registry:
    """The registry in one Redis: beats of `entry`, its deregistration, the live list."""

    def __init__(self, url: str, entry: Entry, interval_s: float = INTERVAL_S) -> None:
        # A beat must not pile up behind a Redis that is away: the next tick is the retry.
        self.redis = connect(url, max_connections=8)
        self._script = self.redis.register_script(SCRIPT)
        self.entry = entry
        self._interval_s = interval_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _call(self, *args: str) -> Any:
        try:
            return await self._script(keys=[HASH_KEY, EXPIRY_KEY], args=list(args))
        except (RedisError, OSError, TimeoutError) as exc:
            raise RegistryUnavailable(str(exc) or type(exc).__name__) from None

    async def beat(self) -> int:
        """Registers or refreshes the entry; answers its expiry (Unix ms, Redis clock)."""
        return int(await self._call("beat", self.entry.field, self.entry.to_json()))

    async def deregister(self) -> None:
        await self._call("drop", self.entry.field)

    async def live(self) -> tuple[int, list[Entry]]:
        """Redis's clock (Unix ms) and the live entries, sorted by name, then instance id."""
        reply = await self._call("list")
        entries = [e for raw in reply[1:] if (e := Entry.from_json(raw)) is not None]
        return int(reply[0]), sorted_entries(entries)

    def start(self) -> None:
        log.info("registry", extra={"field": self.entry.field, "url": self.entry.url})
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.beat()
            except RegistryUnavailable as exc:
                if not failing:
                    failing = True
                    log.warning(
                        "registry_heartbeat_failed",
                        extra={"error": str(exc), "field": self.entry.field},
                    )
            else:
                if failing:
                    failing = False
                    log.info("registry_heartbeat_restored", extra={"field": self.entry.field})
            # Stop only between beats: no beat lands after the deregistration.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
                return

    async def stop(self) -> None:
        """Stops the beats, deregisters (a Redis that is away: the entry expires by itself),
        closes the client."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
            try:
                await self.deregister()
                log.info("deregistered", extra={"field": self.entry.field})
            except RegistryUnavailable as exc:
                log.warning("registry_deregister_failed", extra={"error": str(exc)})
        await self.redis.aclose()
