# Harness of the fault suite: the real stack in Redis mode (a redis-server with AOF in a
# temporary directory, the release binaries of pricing and inventory, the real gateway), a
# real Toxiproxy between the gateway and each upstream and between every service and Redis,
# a load of clients that retry with their Idempotency-Key as a real client would, and the
# invariant check run from the services' own APIs and Redis once the fault is over.
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
REDIS_CONF = ROOT / "deploy" / "redis" / "redis.conf"
# The long form (make faults) loads longer and with more clients.
LONG = os.environ.get("FAULTS_LONG") == "1"
LOAD_S = 20.0 if LONG else 4.0  # steady load before and after the fault
FAULT_S = 10.0 if LONG else 4.0  # how long a fault lasts
CLIENTS = 16 if LONG else 6
READERS = 4 if LONG else 2
# product -> initial stock: enough to keep orders flowing through the whole run, and one
# scarce product so stock-outs (409) happen under the fault too.
PRODUCTS = {601: 5000, 602: 5000, 603: 5000, 604: 5000, 605: 12}
ORDER_PAUSE_S = 0.02  # between a client's orders: steady load, not a saturating one
RESERVATION_TTL_S = 6  # holds nobody settles (a killed client) come back quickly
ORDER_RECOVERY_S = 2
CLIENT_TIMEOUT_S = 5.0
SETTLE_S = 40.0  # after the load: every key to a final answer, every order resolved


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import harness  # noqa: E402 - tests/ is put on the path just above

e2e = harness.load()


def toxiproxy_binary() -> Path:
    """The pinned toxiproxy-server that make deps-faults built into the tools cache."""
    cache = Path(os.environ.get("POLYSHOP_TOOLS", Path.home() / ".cache" / "polyshop" / "tools"))
    version = os.environ.get("TOXIPROXY_VERSION", "v2.5.0")
    exe = cache / f"toxiproxy-{version}" / "toxiproxy-server"
    if not exe.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exe} is missing (make deps-faults builds it)")
        pytest.skip(f"{exe} is missing; run make deps-faults")
    return exe


class Toxiproxy:
    """A toxiproxy-server process and its HTTP API."""

    def __init__(self, workdir: Path) -> None:
        port = e2e.free_port()
        self.service = e2e.Service(
            "toxiproxy",
            [str(toxiproxy_binary()), "-host", "127.0.0.1", "-port", str(port)],
            port,
            {"PATH": "/usr/bin:/bin"},
            workdir / "toxiproxy.log",
            ready_path="/version",
        )
        self.api = f"http://127.0.0.1:{port}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def proxy(self, name: str, upstream_port: int) -> int:
        """A proxy to 127.0.0.1:upstream_port; answers the port it listens on."""
        listen = e2e.free_port()
        self._call(
            "POST",
            "/proxies",
            {
                "name": name,
                "listen": f"127.0.0.1:{listen}",
                "upstream": f"127.0.0.1:{upstream_port}",
            },
        )
        return listen

    def toxic(self, proxy: str, kind: str, stream: str, toxicity: float, **attributes: Any) -> str:
        name = f"{kind}-{stream}-{uuid.uuid4().hex[:6]}"
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
        )
        return name

    def remove(self, proxy: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")


@dataclass
class FaultStack:
    """The stack wired through Toxiproxy: gateway -> inventory, gateway -> pricing, and every
    service -> Redis go through a proxy of the same name."""

    workdir: Path
    services: dict[str, Any] = field(default_factory=dict)
    toxiproxy: Toxiproxy | None = None
    redis_port: int = 0

    def start(self) -> None:
        for path, what in (
            (e2e.PRICING_BIN, "target/release/pricing"),
            (e2e.INVENTORY_BIN, "bin/inventory"),
            (e2e.PYTHON, ".venv"),
        ):
            if not path.exists():
                e2e._missing(what)
        exe = shutil.which("redis-server")
        if exe is None:
            e2e._missing("redis-server")
        self.toxiproxy = Toxiproxy(self.workdir)
        self.toxiproxy.service.start()
        self.toxiproxy.service.wait_ready()
        self.redis_port = e2e.free_port()
        data = self.workdir / "redis-data"
        data.mkdir()
        # With the settings every mode that starts a Redis uses (AOF everysec, noeviction).
        self.services["redis"] = e2e.Service(
            "redis",
            [exe, str(REDIS_CONF), "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--dir", str(data)],
            self.redis_port,
            {"PATH": "/usr/bin:/bin"},
            self.workdir / "redis.log",
            ready_path=None,
        )  # fmt: skip
        self.services["redis"].start()
        self.services["redis"].wait_ready()
        redis_via = self.toxiproxy.proxy("redis", self.redis_port)
        common = {
            "REDIS_URL": f"redis://127.0.0.1:{redis_via}/0",
            "UPSTREAM_TIMEOUT_MS": "400",
            "REQUEST_DEADLINE_MS": "1500",
            "BREAKER_COOLDOWN_S": "2",
            "RESERVATION_TTL_S": str(RESERVATION_TTL_S),
            "ORDER_RECOVERY_S": str(ORDER_RECOVERY_S),
            "LOG_LEVEL": "info",
        }
        inv_port, pri_port, gw_port = e2e.free_port(), e2e.free_port(), e2e.free_port()
        self._service("inventory", e2e.INVENTORY_BIN, inv_port, common)
        inv_via = self.toxiproxy.proxy("inventory", inv_port)
        self._service(
            "pricing",
            e2e.PRICING_BIN,
            pri_port,
            common | {"INVENTORY_URL": f"http://127.0.0.1:{inv_port}"},
        )
        pri_via = self.toxiproxy.proxy("pricing", pri_port)
        self._service(
            "gateway",
            None,
            gw_port,
            common
            | {
                "INVENTORY_URL": f"http://127.0.0.1:{inv_via}",
                "PRICING_URL": f"http://127.0.0.1:{pri_via}",
            },
        )

    def _service(self, name: str, binary: Path | None, port: int, env: dict[str, str]) -> None:
        argv = [str(binary)] if binary else [str(e2e.PYTHON), "-m", "gateway"]
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PORT": str(port),
            "ADMIN_TOKEN": e2e.ADMIN_TOKEN,
            "INSTANCE_ID": f"faults-{name}",
        }
        svc = e2e.Service(name, argv, port, base | env, self.workdir / f"{name}.log")
        self.services[name] = svc
        svc.start()
        svc.wait_ready()

    def url(self, name: str) -> str:
        return str(self.services[name].url)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        svc = self.services[name]
        svc.signal(sig)
        svc.proc.wait(30)
        svc.proc = None

    def restart(self, name: str) -> None:
        svc = self.services[name]
        svc.start()
        svc.wait_ready()

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, socket_timeout=5)

    def stop(self) -> None:
        for svc in reversed(list(self.services.values())):
            svc.stop()
        if self.toxiproxy is not None:
            self.toxiproxy.service.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.tail()}" for n, s in self.services.items())

    def log_count(self, name: str, msg: str, containing: str = "") -> int:
        """Lines of a service's JSON log with that msg (and holding containing)."""
        lines = self.services[name].log.read_text(errors="replace").splitlines()
        return sum(f'"msg":"{msg}"' in line and containing in line for line in lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        stack = getattr(item, "funcargs", {}).get("stack")
        if isinstance(stack, FaultStack):
            report.sections.append(("service logs", stack.logs()))
    return report


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    s = FaultStack(tmp_path)
    try:
        s.start()
        yield s
    finally:
        s.stop()


# --- load: clients that retry with their key, and readers ------------------------------


@dataclass
class Attempt:
    key: str
    status: int  # 0 = no HTTP answer (refused, reset, client timeout)
    code: str | None
    order_id: int | None
    at: float  # time.monotonic() when the answer (or the error) came
    started: float


@dataclass
class Load:
    gateway: str
    attempts: list[Attempt] = field(default_factory=list)
    reads: Counter[int] = field(default_factory=Counter)
    keys: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> order body
    final: dict[str, int] = field(default_factory=dict)  # key -> final status
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Once set, clients finish the key in hand and take no new one.
    draining: asyncio.Event = field(default_factory=asyncio.Event)

    async def _order(self, http: aiohttp.ClientSession, rng: random.Random) -> None:
        key = uuid.uuid4().hex
        body = {"product_id": rng.choice(list(PRODUCTS)), "quantity": rng.randint(1, 3)}
        self.keys[key] = body
        pause = 0.1
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            started = time.monotonic()
            status, code, order_id = 0, None, None
            try:
                async with http.post(
                    f"{self.gateway}/api/order", json=body, headers={"Idempotency-Key": key}
                ) as resp:
                    status = resp.status
                    data = await resp.json(content_type=None)
                    if status == 201:
                        order_id = int(data["order_id"])
                    else:
                        code = data["error"]["code"]
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            self.attempts.append(Attempt(key, status, code, order_id, time.monotonic(), started))
            # A real client retries what may succeed: no answer, 5xx, a request in progress.
            if status and status < 500 and code != "request_in_progress":
                self.final[key] = status
                return
            await asyncio.sleep(pause * (0.5 + rng.random()))
            pause = min(pause * 2, 1.0)

    async def client(self, http: aiohttp.ClientSession, seed: int) -> None:
        rng = random.Random(seed)
        while not self.draining.is_set():
            await self._order(http, rng)
            await asyncio.sleep(ORDER_PAUSE_S)

    async def reader(self, http: aiohttp.ClientSession, seed: int) -> None:
        rng = random.Random(seed)
        while not self.draining.is_set():
            try:
                async with http.get(
                    f"{self.gateway}/api/product/{rng.choice(list(PRODUCTS))}"
                ) as r:
                    await r.read()
                    self.reads[r.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                self.reads[0] += 1
            await asyncio.sleep(0.02)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S),
    ) as session:
        yield session
