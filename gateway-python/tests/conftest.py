# Unit-test fixtures: fake pricing and inventory upstreams served over real HTTP on port 0
# (aiohttp TestServer), a real redis-server when a test asks for one, and the gateway app
# built by create_app(settings) with its lifespan running, driven through httpx's ASGI transport.
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from gateway.config import Settings
from gateway.main import create_app

# Property tests (test_fuzz.py): a short run by default; HYPOTHESIS_PROFILE=fuzz (make fuzz)
# runs many more examples. The gateway under test is shared by the examples of one test.
_SHARED_APP = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
hypothesis_settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=_SHARED_APP
)
hypothesis_settings.register_profile(
    "fuzz", max_examples=5000, deadline=None, suppress_health_check=_SHARED_APP
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _err(status: int, code: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": code, "request_id": "x"}}, status=status
    )


@dataclass
class FakeInventory:
    """Inventory's hold semantics (inventory.openapi.yaml) for the saga: holds with a state,
    a key that answers its hold while it can sell and moves to a new hold once it cannot,
    commit and release that answer the state they found, and hooks that lose answers."""

    stock: dict[int, int] = field(default_factory=lambda: {123: 223, 7: 3})
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    sold: dict[int, int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    headers: list[Any] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # action -> status to answer
    fail_times: dict[str, int] = field(default_factory=dict)  # action -> how many times
    delay_s: dict[str, float] = field(default_factory=dict)
    seq: int = 0
    id_prefix: str = ""  # reservation ids are unique across shards, as inventory's are
    expire_on_commit: bool = False  # the hold runs out just before the commit arrives
    expire_on_release: bool = False  # ... or just before the release arrives
    # Apply the action, then answer this late (once): the answer is lost to a short timeout.
    lose_answer_s: dict[str, float] = field(default_factory=dict)

    async def _maybe_fail(self, action: str) -> web.Response | None:
        if action in self.delay_s:
            await asyncio.sleep(self.delay_s[action])
        if action not in self.fail:
            return None
        if action in self.fail_times:
            if self.fail_times[action] <= 0:
                return None
            self.fail_times[action] -= 1
        return _err(self.fail[action], "upstream_unavailable")

    async def _late(self, action: str) -> None:
        delay = self.lose_answer_s.pop(action, 0.0)
        if delay:
            await asyncio.sleep(delay)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/reservations", self.reserve)
        app.router.add_post("/api/reservations/{id}/commit", self.commit)
        app.router.add_delete("/api/reservations/{id}", self.release)
        app.router.add_get("/api/reservations/{id}", self.lookup)
        app.router.add_get("/api/stats", self.stats)
        return app

    def _hold_json(self, rid: str, **extra: Any) -> dict[str, Any]:
        h = self.holds[rid]
        return {
            "reservation_id": rid,
            "product_id": h["product_id"],
            "quantity": h["quantity"],
            "state": h["state"],
            "expires_at": "2026-11-23T10:05:00.000Z",
            **extra,
        }

    def _settle(self, rid: str, state: str) -> None:
        hold = self.holds[rid]
        hold["state"] = state
        if state == "committed":
            self.sold[hold["product_id"]] = self.sold.get(hold["product_id"], 0) + hold["quantity"]
        else:
            self.stock[hold["product_id"]] += hold["quantity"]

    async def reserve(self, request: web.Request) -> web.Response:
        self.calls.append(("reserve", ""))
        self.headers.append(request.headers.copy())
        if (resp := await self._maybe_fail("reserve")) is not None:
            return resp
        body = await request.json()
        pid, qty, key = body["product_id"], body["quantity"], body.get("idempotency_key")
        if key and key in self.by_key:
            prev = self.by_key[key]
            if self.holds[prev]["state"] in ("held", "committed"):
                return web.json_response(self._hold_json(prev, **self.holds[prev]["before"]))
        if pid not in self.stock:
            return _err(404, "product_not_found")
        if self.stock[pid] < qty:
            return _err(409, "insufficient_stock")
        before = {"available_before": self.stock[pid], "recent_demand_before": 0}
        self.stock[pid] -= qty
        self.seq += 1
        rid = f"RES-{self.id_prefix}{self.seq}"
        self.holds[rid] = {"state": "held", "product_id": pid, "quantity": qty, "before": before}
        if key:
            self.by_key[key] = rid
        await self._late("reserve")
        return web.json_response(self._hold_json(rid, **before), status=201)

    async def commit(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        self.calls.append(("commit", rid))
        if (resp := await self._maybe_fail("commit")) is not None:
            return resp
        hold = self.holds.get(rid)
        if hold is None:
            return _err(404, "reservation_not_found")
        if self.expire_on_commit and hold["state"] == "held":
            self._settle(rid, "expired")
        if hold["state"] == "expired":
            return _err(409, "reservation_expired")
        if hold["state"] == "released":
            return _err(409, "reservation_released")
        repeated = hold["state"] == "committed"
        if not repeated:
            self._settle(rid, "committed")
        await self._late("commit")
        return web.json_response(self._hold_json(rid, repeated=repeated))

    async def release(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        self.calls.append(("release", rid))
        if (resp := await self._maybe_fail("release")) is not None:
            return resp
        hold = self.holds.get(rid)
        if hold is None:
            return _err(404, "reservation_not_found")
        if self.expire_on_release and hold["state"] == "held":
            self._settle(rid, "expired")
        if hold["state"] == "committed":
            return _err(409, "reservation_committed")
        repeated = hold["state"] == "released"
        if hold["state"] == "held":
            self._settle(rid, "released")
        return web.json_response(self._hold_json(rid, repeated=repeated))

    async def lookup(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        self.calls.append(("lookup", rid))
        if (resp := await self._maybe_fail("lookup")) is not None:
            return resp
        if rid not in self.holds:
            return _err(404, "reservation_not_found")
        return web.json_response(self._hold_json(rid))

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": "inventory-service",
                "language": "Go",
                "requests_processed": len(self.calls),
                "active_goroutines": 4,
                "avg_response_time_us": 12.5,
            }
        )

    def actions(self, action: str) -> list[str]:
        return [rid for act, rid in self.calls if act == action]

    def units_conserved(self, pid: int, initial: int) -> bool:
        held = sum(
            h["quantity"]
            for h in self.holds.values()
            if h["product_id"] == pid and h["state"] == "held"
        )
        return self.stock[pid] + held + self.sold.get(pid, 0) == initial


@dataclass
class FakePricing:
    """Prices with docs/DESIGN.md's rules so seed values can be checked value for value."""

    base: dict[int, str] = field(default_factory=lambda: {123: "173.00", 7: "10.00"})
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    raw_product_body: bytes | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/calculate_price", self.calculate)
        app.router.add_get("/api/prices/{id}", self.product)
        app.router.add_get("/api/prices", self.products)
        app.router.add_get("/api/stats", self.stats)
        return app

    def price(self, pid: int, available: int, quantity: int, demand: int) -> dict[str, Any]:
        base = Decimal(self.base[pid])
        scarcity = (
            Decimal("1.5") if available < 10 else Decimal("1.2") if available < 50 else Decimal(1)
        )
        demand_f = min(Decimal("1.00") + Decimal("0.01") * demand, Decimal("1.25"))
        tier, disc = (
            ("platinum", 20)
            if quantity >= 100
            else ("gold", 15)
            if quantity >= 50
            else ("silver", 10)
            if quantity >= 10
            else ("basic", 5)
        )
        final = (base * demand_f * scarcity * (1 - Decimal(disc) / 100)).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        return {
            "base_price": float(base),
            "final_price": float(final),
            "discount_percent": float(disc),
            "price_tier": tier,
        }

    async def calculate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        if "calculate" in self.delay_s:
            await asyncio.sleep(self.delay_s["calculate"])
        if "calculate" in self.fail:
            return _err(self.fail["calculate"], "internal_error")
        if body["product_id"] not in self.base:
            return _err(404, "product_not_found")
        out = self.price(
            body["product_id"],
            body["quantity_available"],
            body.get("quantity", 1),
            body.get("recent_demand", 0),
        )
        return web.json_response(
            {
                "product_id": body["product_id"],
                **out,
                "scarcity_factor": 1.0,
                "demand_factor": 1.0,
                "currency": "USD",
            }
        )

    def product_obj(self, pid: int) -> dict[str, Any]:
        p = self.price(pid, 223, 1, 0)
        return {
            "product_id": pid,
            "inventory": {
                "available": 223,
                "warehouse": "WH-4",
                "last_updated": "2026-11-23T10:00:00Z",
            },
            "pricing": p,
        }

    async def product(self, request: web.Request) -> web.Response:
        self.calls.append({"path": request.path, "headers": request.headers.copy()})
        if "product" in self.delay_s:
            await asyncio.sleep(self.delay_s["product"])
        if "product" in self.fail:
            return _err(self.fail["product"], "upstream_unavailable")
        if self.raw_product_body is not None:
            return web.Response(body=self.raw_product_body, content_type="application/json")
        pid = int(request.match_info["id"])
        if pid not in self.base:
            return _err(404, "product_not_found")
        return web.json_response(self.product_obj(pid))

    async def products(self, request: web.Request) -> web.Response:
        ids = [int(x) for x in request.query["ids"].split(",")]
        self.calls.append({"path": request.path, "ids": ids})
        return web.json_response(
            {
                "products": [self.product_obj(i) for i in ids if i in self.base],
                "not_found": [i for i in ids if i not in self.base],
            }
        )

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": "pricing-service",
                "language": "Rust",
                "requests_processed": len(self.calls),
                "avg_calculation_time_us": 3.2,
            }
        )


@pytest.fixture
def fake_inventory() -> FakeInventory:
    return FakeInventory()


@pytest.fixture
def fake_pricing() -> FakePricing:
    return FakePricing()


@pytest.fixture
async def upstreams(
    fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> AsyncIterator[tuple[str, str]]:
    inv = TestServer(fake_inventory.app(), host="127.0.0.1", port=0)
    pri = TestServer(fake_pricing.app(), host="127.0.0.1", port=0)
    await inv.start_server()
    await pri.start_server()
    try:
        yield str(pri.make_url("")).rstrip("/"), str(inv.make_url("")).rstrip("/")
    finally:
        await inv.close()
        await pri.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing (run `make deps`)")
        pytest.skip("redis-server is not installed; `make deps` installs it")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def rdb(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's redis-server, its database flushed first."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"instance_id": "test-1", "upstream_timeout_ms": 1000}
    values.update(overrides)
    return Settings.model_validate(values)


@dataclass
class Gateway:
    client: httpx.AsyncClient
    app: Any

    @property
    def services(self) -> Any:
        return self.app.state.services


@pytest.fixture(params=["memory", "redis"])
def store_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def start_gateway(settings: Settings) -> tuple[Any, Any, httpx.AsyncClient]:
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    return app, lifespan, client


@pytest.fixture
async def gateway_factory(
    upstreams: tuple[str, str],
) -> AsyncIterator[Any]:
    opened: list[tuple[Any, httpx.AsyncClient]] = []

    async def factory(**overrides: Any) -> Gateway:
        pricing_url, inventory_url = upstreams
        values: dict[str, Any] = {"pricing_url": pricing_url, "inventory_url": inventory_url}
        settings = make_settings(**(values | overrides))
        app, lifespan, client = await start_gateway(settings)
        opened.append((lifespan, client))
        return Gateway(client, app)

    yield factory
    for lifespan, client in opened:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def gw(gateway_factory: Any) -> Gateway:
    gateway: Gateway = await gateway_factory()
    return gateway


@pytest.fixture
def store_gateway_factory(
    request: pytest.FixtureRequest, store_mode: str, gateway_factory: Any
) -> Any:
    """Gateways in memory mode and, as a second case, on a real (flushed) redis-server."""

    async def factory(**overrides: Any) -> Gateway:
        if store_mode == "redis":
            import redis

            url = request.getfixturevalue("redis_url")
            redis.Redis.from_url(url).flushdb()
            overrides["redis_url"] = url
        gateway: Gateway = await gateway_factory(**overrides)
        return gateway

    return factory


@pytest.fixture
async def gw_store(store_gateway_factory: Any) -> Gateway:
    gateway: Gateway = await store_gateway_factory()
    return gateway
