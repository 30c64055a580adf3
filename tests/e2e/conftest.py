# End-to-end harness: starts a real redis-server, the release binaries of pricing and
# inventory and the real gateway on free ports, waits for /ready, and tears everything down
# by PID (waiting for the ports to close). Nothing is mocked at this level.
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import free_port

ROOT = Path(__file__).resolve().parents[2]
PRICING_BIN = ROOT / "target" / "release" / "pricing"
INVENTORY_BIN = ROOT / "bin" / "inventory"
PYTHON = ROOT / ".venv" / "bin" / "python"
ADMIN_TOKEN = "e2e-admin-token"
START_TIMEOUT_S = 30.0


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (run `make build` / `make deps`)")
    pytest.skip(f"{what} is missing; run `make build` (make test-e2e does)")


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    ready_path: str | None = "/ready"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if self.ready_path is None:
                if port_open(self.port):
                    return
            else:
                try:
                    with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as resp:
                        if resp.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} was not ready in {START_TIMEOUT_S}s:\n{self.tail()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a SIGSTOPped process ignores SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proc = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    mode: str
    workdir: Path
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    inventory_shards: int = 1
    # Shards that own their data (ring.md): INVENTORY_SHARD_ID inv-0.., each its own Redis
    # db, the ring record and the registry in db 0. False: INVENTORY_URLS over full copies.
    owned: bool = False

    def _env(self, name: str, port: int, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PORT": str(port),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "LOG_LEVEL": "warn",
            "INSTANCE_ID": f"e2e-{name}",
        }
        env.update(extra)
        env.update(self.env_overrides.get(name, {}))
        env.update(self.env_overrides.get("*", {}))
        return env

    def start(self) -> None:
        for path, what in (
            (PRICING_BIN, "target/release/pricing"),
            (INVENTORY_BIN, "bin/inventory"),
            (PYTHON, ".venv"),
        ):
            if not path.exists():
                _missing(what)
        common: dict[str, str] = {}
        if self.mode == "redis":
            exe = shutil.which("redis-server")
            if exe is None:
                _missing("redis-server")
                return
            port = free_port()
            redis = Service(
                "redis",
                # The one Redis config of every mode (AOF, maxmemory, noeviction), its
                # files in this run's workdir.
                [exe, str(ROOT / "deploy" / "redis" / "redis.conf"), "--port", str(port),
                 "--bind", "127.0.0.1", "--dir", str(self.workdir)],
                port,
                {"PATH": "/usr/bin:/bin"},
                self.workdir / "redis.log",
                ready_path=None,
            )  # fmt: skip
            self.services["redis"] = redis
            common["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        if self.owned and "REDIS_URL" not in common:
            raise ValueError("owned shards need the registry: redis mode")
        pri_port, gw_port = free_port(), free_port()
        urls: list[str] = []
        members = ",".join(f"inv-{i}" for i in range(self.inventory_shards))
        for i in range(self.inventory_shards):
            name = "inventory" if i == 0 else f"inventory-{i}"
            port = free_port()
            shard_env = dict(common)
            if self.owned:
                # Each shard its own store (a Redis db of its own, like a separate instance);
                # the ring record and the registry in db 0, where every service looks.
                shard_env["REDIS_URL"] = common["REDIS_URL"].rsplit("/", 1)[0] + f"/{i + 1}"
                shard_env["REGISTRY_URL"] = common["REDIS_URL"]
                shard_env["INVENTORY_SHARD_ID"] = f"inv-{i}"
                shard_env["INVENTORY_SHARDS"] = members
            elif i and "REDIS_URL" in common:
                shard_env["REDIS_URL"] = common["REDIS_URL"].rsplit("/", 1)[0] + f"/{i}"
            self.services[name] = Service(
                name,
                [str(INVENTORY_BIN)],
                port,
                self._env("inventory", port, shard_env),
                self.workdir / f"{name}.log",
            )
            urls.append(f"http://127.0.0.1:{port}")
        inventory = {"INVENTORY_URL": urls[0]}
        if self.inventory_shards > 1:
            inventory["INVENTORY_URLS"] = ",".join(urls)
        self.services["pricing"] = Service(
            "pricing",
            [str(PRICING_BIN)],
            pri_port,
            self._env("pricing", pri_port, common | inventory),
            self.workdir / "pricing.log",
        )
        self.services["gateway"] = Service(
            "gateway",
            [str(PYTHON), "-m", "gateway"],
            gw_port,
            self._env(
                "gateway",
                gw_port,
                common
                | inventory
                | {
                    "PRICING_URL": f"http://127.0.0.1:{pri_port}",
                    # This checkout's gateway, whichever checkout the venv was installed from.
                    "PYTHONPATH": str(ROOT / "gateway-python" / "src"),
                },
            ),
            self.workdir / "gateway.log",
        )
        try:
            for svc in self.services.values():
                svc.start()
                svc.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for svc in reversed(list(self.services.values())):
            svc.stop()

    @property
    def gateway(self) -> str:
        return self.services["gateway"].url

    @property
    def inventory(self) -> str:
        return self.services["inventory"].url

    @property
    def pricing(self) -> str:
        return self.services["pricing"].url

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.tail()}" for n, s in self.services.items())


StackFactory = Callable[..., Stack]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        # The services' own last log lines, next to the failure, for CI runs.
        for fixture in ("stack", "make_stack"):
            value = getattr(item, "funcargs", {}).get(fixture)
            stacks = [value] if isinstance(value, Stack) else getattr(value, "stacks", [])
            for s in stacks:
                report.sections.append((f"service logs ({s.mode})", s.logs()))
    return report


@pytest.fixture(params=["memory", "redis"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=["memory", "redis"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack per mode shared by a module's tests (they use distinct products)."""
    s = Stack(str(request.param), tmp_path_factory.mktemp(f"stack-{request.param}"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """A private stack for tests that break a process or need other knobs."""
    started: list[Stack] = []

    class Factory:
        stacks = started

        def __call__(
            self, mode: str, shards: int = 1, owned: bool = False, **env_overrides: dict[str, str]
        ) -> Stack:
            return factory(mode, shards, owned, **env_overrides)

    def factory(
        mode: str, shards: int = 1, owned: bool = False, **env_overrides: dict[str, str]
    ) -> Stack:
        s = Stack(mode, tmp_path / f"stack-{len(started)}", dict(env_overrides), {}, shards, owned)
        s.workdir.mkdir(parents=True)
        started.append(s)
        s.start()
        return s

    yield Factory()
    for s in started:
        s.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


async def restock(
    http: aiohttp.ClientSession, stack: Stack, product_id: int, units: int, at: str = ""
) -> None:
    """Sets a product's free units at inventory (at: another inventory's base URL, a shard)."""
    async with http.put(
        f"{at or stack.inventory}/api/inventory/{product_id}",
        json={"available": units},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as resp:
        assert resp.status == 200, await resp.text()


async def available(
    http: aiohttp.ClientSession, stack: Stack, product_id: int, service: str = "inventory"
) -> int:
    async with http.get(f"{stack.services[service].url}/api/inventory/{product_id}") as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return int(data["available"])


async def settles_to(
    http: aiohttp.ClientSession, stack: Stack, product_id: int, units: int, timeout_s: float = 10
) -> int:
    """`available` once it equals units, or its last value after timeout_s. A saga's release
    after a failure runs detached from the answer (it must not wait on a spent deadline), so
    it may land just after the 503."""
    got = await available(http, stack, product_id)
    for _ in range(int(timeout_s * 10)):
        if got == units:
            break
        await asyncio.sleep(0.1)
        got = await available(http, stack, product_id)
    return got


async def inventory_item(
    http: aiohttp.ClientSession, stack: Stack, product_id: int
) -> dict[str, Any]:
    async with http.get(f"{stack.inventory}/api/inventory/{product_id}") as resp:
        data: dict[str, Any] = await resp.json()
        return data
