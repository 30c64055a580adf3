# Harness of the dashboard proof: the real stack (tests/e2e's Stack, memory mode) on free
# ports, a real Prometheus server scraping it every second with the repo's rules loaded,
# and a bounded mixed load over HTTP on 127.0.0.1. Processes are torn down by PID.
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
LOAD_SECONDS = float(os.environ.get("DASHBOARD_LOAD_SECONDS", "15"))
LOAD_WORKERS = 4
# Each worker pauses between requests: about 150 rps in all, enough for every series and
# far from saturating the two shared cores.
LOAD_PAUSE_S = 0.02


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import harness  # noqa: E402 - tests/ is put on the path just above

e2e = harness.load()


@dataclass
class Observed:
    """A stack that has been under load, and the Prometheus that watched it."""

    prometheus: str
    at: float  # unix time at which every query is evaluated (end of the load)
    statuses: Counter[str]

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = urllib.parse.urlencode({"query": expr, "time": f"{self.at:.3f}"}).encode()
        req = urllib.request.Request(f"{self.prometheus}/api/v1/query", data=body)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                answer = json.load(resp)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{expr!r}: Prometheus said {e.code}: {e.read()!r}") from e
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


def prometheus_config(targets: dict[str, int]) -> str:
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']"
        for job, port in targets.items()
    )
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}/*.yml\nscrape_configs:\n{jobs}\n"
    )


def start_prometheus(workdir: Path, targets: dict[str, int]) -> Any:
    exe = shutil.which("prometheus")
    if exe is None:
        e2e._missing("prometheus (Debian package, installed by make deps)")
    config = workdir / "prometheus.yml"
    config.write_text(prometheus_config(targets))
    port = e2e.free_port()
    svc = e2e.Service(
        "prometheus",
        [
            str(exe),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        port,
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)},
        workdir / "prometheus.log",
        ready_path="/-/ready",
    )
    svc.start()
    svc.wait_ready()
    return svc


def start_redis_exporter(workdir: Path, redis_port: int) -> Any:
    """Debian's prometheus-redis-exporter (make deps installs it), as compose runs it."""
    exe = shutil.which("prometheus-redis-exporter")
    if exe is None:
        e2e._missing("prometheus-redis-exporter (Debian package, installed by make deps)")
    port = e2e.free_port()
    svc = e2e.Service(
        "redis-exporter",
        [
            str(exe),
            f"--redis.addr=redis://127.0.0.1:{redis_port}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port,
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        workdir / "redis-exporter.log",
        ready_path="/metrics",
    )
    svc.start()
    svc.wait_ready()
    return svc


def wait_for_targets(prom: str, jobs: set[str], timeout: float = 15.0) -> None:
    obs = Observed(prom, 0.0, Counter())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obs.at = time.time()
        up = {r["metric"]["job"] for r in obs.query("up == 1")}
        if jobs <= up:
            return
        time.sleep(0.2)
    raise RuntimeError(f"Prometheus never scraped all of {jobs}")


async def _worker(
    http: aiohttp.ClientSession, gw: str, seed: int, until: float, statuses: Counter[str]
) -> None:
    rnd = random.Random(seed)
    while time.monotonic() < until:
        roll = rnd.random()
        pid = rnd.randint(1, 1000)
        if roll < 0.45:
            req = http.get(f"{gw}/api/product/{pid}")
        elif roll < 0.55:
            ids = ",".join(str(rnd.randint(1, 1000)) for _ in range(5))
            req = http.get(f"{gw}/api/products", params={"ids": ids})
        elif roll < 0.80:
            # 1-60 units so every price tier up to gold shows; a key on half of them, and
            # some keys sent twice (replays).
            key = f"dash-{seed}-{rnd.randint(0, 40)}" if rnd.random() < 0.5 else None
            headers = {"Idempotency-Key": key} if key else {}
            qty = rnd.choice((1, 2, 3, 12, 60))
            body = {"product_id": pid, "quantity": qty}
            if key:
                body = {"product_id": 500 + int(key.rsplit("-", 1)[1]), "quantity": 1}
            req = http.post(f"{gw}/api/order", json=body, headers=headers)
        elif roll < 0.87:
            # More than any product has: 409 insufficient_stock.
            req = http.post(f"{gw}/api/order", json={"product_id": pid, "quantity": 10_000})
        elif roll < 0.93:
            # Out of bounds: 422.
            req = http.post(f"{gw}/api/order", json={"product_id": pid, "quantity": 0})
        elif roll < 0.97:
            req = http.get(f"{gw}/api/stats")
        else:
            req = http.get(f"{gw}/api/order/{rnd.randint(1, 10**6)}")  # 404
        async with req as resp:
            await resp.read()
            statuses[str(resp.status)] += 1
        await asyncio.sleep(LOAD_PAUSE_S)


async def drive_load(gw: str, seconds: float) -> Counter[str]:
    statuses: Counter[str] = Counter()
    until = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(
            *(_worker(http, gw, seed, until, statuses) for seed in range(LOAD_WORKERS))
        )
    return statuses


@pytest.fixture(scope="session")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    workdir = tmp_path_factory.mktemp("dashboards")
    # Redis mode, with the exporter the compose stack runs, so the Redis panels have data.
    stack = e2e.Stack("redis", workdir)
    stack.start()
    prom = exporter = None
    try:
        exporter = start_redis_exporter(workdir, stack.services["redis"].port)
        targets = {name: stack.services[name].port for name in ("gateway", "pricing", "inventory")}
        prom = start_prometheus(workdir, targets | {"redis": exporter.port})
        wait_for_targets(prom.url, {"gateway", "pricing", "inventory", "redis"})
        statuses = asyncio.run(drive_load(stack.gateway, LOAD_SECONDS))
        end = time.time()
        # Two more scrapes and rule evaluations so the last second of load is recorded.
        time.sleep(2.5)
        yield Observed(prom.url, end, statuses)
    finally:
        if prom is not None:
            prom.stop()
        if exporter is not None:
            exporter.stop()
        stack.stop()
