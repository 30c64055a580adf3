# The compose stack for real (make compose-test starts it: `docker compose up --build` of
# everything but Grafana, on a Docker engine of its own): the seed API through the published
# ports, an oversell guard, an idempotent replay, the containerised Prometheus scraping every
# job, a Redis container restart that keeps orders and stock, and the `load` profile
# headless for 30 s with zero failures. Ordered: the restart and the load come last.
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# tests/harness.py holds the polling loop the compose and cluster suites share.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import eventually

GATEWAY = "http://127.0.0.1:8000"
INVENTORY = "http://127.0.0.1:8002"
PROMETHEUS = "http://127.0.0.1:9090"
ADMIN = {"Authorization": "Bearer " + os.environ.get("ADMIN_TOKEN", "polyshop-dev-admin")}
COMPOSE = os.environ.get("COMPOSE", "docker-compose")
PROJECT = os.environ.get("COMPOSE_PROJECT", "polyshop-ci")
DOCKER = os.environ.get("DOCKER", "docker")


def compose(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    out = subprocess.run(
        [COMPOSE, "-p", PROJECT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | (env or {}),
        check=False,
    )
    assert out.returncode == 0, f"compose {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def prom(expr: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": expr})
    answer = get_json(f"{PROMETHEUS}/api/v1/query?{q}")
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


async def order(http: aiohttp.ClientSession, body: dict[str, int], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    async with http.post(f"{GATEWAY}/api/order", json=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_seed_api_through_the_published_ports(http: aiohttp.ClientSession) -> None:
    async with http.get(f"{GATEWAY}/api/product/123") as resp:
        product = await resp.json()
    assert resp.status == 200, product
    assert product["pricing"]["final_price"] == 164.35
    assert product["inventory"]["warehouse"] == "WH-4"
    status, placed, _ = await order(http, {"product_id": 123, "quantity": 2})
    assert status == 201, placed
    assert (placed["unit_price"], placed["total_price"]) == (164.35, 328.7)
    async with http.get(f"{GATEWAY}/api/stats") as resp:
        stats = await resp.json()
    assert stats["pricing_service"]["language"] == "Rust"
    assert stats["inventory_service"]["language"] == "Go"
    assert stats["pricing_service"]["requests_processed"] > 0
    assert stats["inventory_service"]["requests_processed"] > 0


async def test_storefront_from_the_image(http: aiohttp.ClientSession) -> None:
    # The image carries the catalog (product names) and the templates; the status page
    # links to the Grafana and Prometheus that compose publishes.
    async with http.get(f"{GATEWAY}/?q=123") as resp:
        grid = await resp.text()
    assert resp.status == 200, grid
    assert 'href="/product/123"' in grid and "Classic Jacket 123" in grid  # the catalog's name
    async with http.get(f"{GATEWAY}/status") as resp:
        status_page = await resp.text()
    assert resp.status == 200, status_page
    assert 'href="http://localhost:3000"' in status_page
    assert 'href="http://localhost:9090"' in status_page


async def test_more_concurrent_orders_than_units_sell_exactly_the_units(
    http: aiohttp.ClientSession,
) -> None:
    restock = {"available": 20}
    async with http.put(f"{INVENTORY}/api/inventory/777", json=restock, headers=ADMIN) as r:
        assert r.status == 200, await r.text()
    answers = await asyncio.gather(
        *(order(http, {"product_id": 777, "quantity": 1}) for _ in range(60))
    )
    statuses = sorted(a[0] for a in answers)
    assert statuses.count(201) == 20, statuses
    assert statuses.count(409) == 40, statuses
    async with http.get(f"{INVENTORY}/api/inventory/777") as r:
        assert (await r.json())["available"] == 0


async def test_idempotent_replay(http: aiohttp.ClientSession) -> None:
    key = uuid.uuid4().hex
    first = await order(http, {"product_id": 124, "quantity": 1}, key)
    again = await order(http, {"product_id": 124, "quantity": 1}, key)
    assert first[0] == again[0] == 201
    assert again[1]["order_id"] == first[1]["order_id"]
    assert again[2].get("Idempotent-Replayed") == "true"


def test_prometheus_scrapes_every_job() -> None:
    jobs = {"gateway", "pricing", "inventory", "redis", "prometheus"}

    def all_up() -> bool:
        up = {r["metric"]["job"]: r["value"][1] for r in prom("up")}
        return jobs <= set(up) and all(up[j] == "1" for j in jobs)

    eventually(all_up, "up == 1 for every job")
    rate = "sum by (job) (rate(http_server_request_duration_seconds_count[1m]))"
    eventually(
        lambda: {"gateway", "pricing", "inventory"} <= {r["metric"]["job"] for r in prom(rate)},
        "a request-rate series for each service",
    )
    eventually(lambda: prom("redis_memory_used_bytes"), "a Redis memory series")


async def test_redis_restart_keeps_orders_and_stock(http: aiohttp.ClientSession) -> None:
    status, placed, _ = await order(http, {"product_id": 125, "quantity": 3})
    assert status == 201, placed
    async with http.get(f"{INVENTORY}/api/inventory/125") as r:
        before = (await r.json())["available"]
    compose("restart", "redis")

    def reconnected() -> bool:
        req = urllib.request.Request(
            f"{GATEWAY}/api/order",
            data=json.dumps({"product_id": 126, "quantity": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 201

    eventually(reconnected, "the services reconnect to the restarted Redis by themselves")
    kept = get_json(f"{GATEWAY}/api/order/{placed['order_id']}")
    assert kept["status"] == "confirmed" and kept["order_id"] == placed["order_id"]
    assert get_json(f"{INVENTORY}/api/inventory/125")["available"] == before


def test_load_profile_headless_30s_without_failures() -> None:
    stats: dict[str, str] = {}

    def sample() -> None:
        time.sleep(20)  # under load: the memory of every container
        out = subprocess.run(
            [DOCKER, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        for line in out.stdout.splitlines():
            name, _, usage = line.partition(" ")
            stats[name] = usage

    sampler = threading.Thread(target=sample)
    sampler.start()
    env = {
        "LOCUST_HEADLESS": "true",
        "LOCUST_USERS": "10",
        "LOCUST_SPAWN_RATE": "5",
        "LOCUST_RUN_TIME": "30s",
    }
    # The master exits after the run; its exit code is 1 if any request failed.
    compose(
        "--profile", "load", "up", "--exit-code-from", "locust-master",
        "locust-master", "locust-worker",
        env=env, timeout=240,
    )  # fmt: skip
    sampler.join()
    for name, usage in sorted(stats.items()):
        print(f"compose-test: memory under load {name}: {usage}")
    logs = compose("--profile", "load", "logs", "--no-color", "locust-master")
    # Locust's summary line: "Aggregated  <requests>  <failures>(<share>%) | ...".
    totals = re.findall(r"Aggregated\s+(\d+)\s+(\d+)\(", logs)
    assert totals, logs[-2000:]
    requests, failures = (int(x) for x in totals[-1])  # the final summary
    print(f"compose-test: locust 30 s headless: {requests} requests, {failures} failures")
    assert requests > 0 and failures == 0
