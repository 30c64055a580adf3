# Shared pieces of the cluster checks: kubectl against the cluster scripts/k8s-test started
# (KUBECONFIG, K8S_NAMESPACE, KUBECTL from it), waits on pod readiness, and a client loop
# that drives the seed API through a Service while pods are killed or rolled.
from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# tests/harness.py holds the polling loop the compose and cluster suites share.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import harness

KUBECTL = os.environ.get("KUBECTL", "kubectl")
NAMESPACE = os.environ.get("K8S_NAMESPACE", "polyshop-dev")
GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
INVENTORY = os.environ.get("INVENTORY_URL", "http://127.0.0.1:8002")
POD_LOGS = os.environ.get("K8S_POD_LOGS", "")


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> str:
    out = subprocess.run(
        [KUBECTL, "-n", NAMESPACE, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check:
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def kget(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def secret(key: str) -> str:
    data = kget("secret", "polyshop-secrets")["data"]
    return base64.b64decode(data[key]).decode()


def pods(app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kget("pods", "-l", f"app.kubernetes.io/name={app}")["items"]
    return items


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 120) -> Any:
    # A pod mid-restart answers JSON without the keys yet: that is "not yet" too.
    return harness.eventually(
        check, what, timeout_s, 0.5, (OSError, ValueError, AssertionError, KeyError)
    )


def ready_pods(
    app: str, count: int, timeout_s: float = 180, exclude: frozenset[str] | set[str] = frozenset()
) -> list[dict[str, Any]]:
    """Waits until exactly `count` pods of `app` exist, all Ready, none of them in `exclude`."""

    def check() -> list[dict[str, Any]] | None:
        now = pods(app)
        names = {p["metadata"]["name"] for p in now}
        if len(now) == count and all(is_ready(p) for p in now) and not names & exclude:
            return now
        return None

    result: list[dict[str, Any]] = eventually(check, f"{count} ready {app} pods", timeout_s)
    return result


def request(
    base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
    timeout: float = 5,
) -> tuple[int, Any]:  # fmt: skip
    """One request on a connection of its own (a Service balances connections, not requests)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Connection": "close", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


@dataclass
class Load:
    """Client threads on the seed API through the gateway Service until stopped: a read of
    product 123 (200, the price it had when the loop started: its demand factor moves only
    with its own orders, and the loop orders another product) and an order (201) on a
    product stocked for the run. Every other answer, a timeout or a connection error counts
    as a failure."""

    base: str
    order_product: int
    price: float = 0.0
    threads: int = 4
    pause_s: float = 0.05
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _one(self, i: int) -> str | None:
        try:
            if i % 4 == 3:
                order = {"product_id": self.order_product, "quantity": 1}
                status, body = request(self.base, "POST", "/api/order", order)
                if status == 201 and isinstance(body, dict) and body.get("status") == "confirmed":
                    return None
                return f"POST /api/order: {status} {str(body)[:200]}"
            status, body = request(self.base, "GET", "/api/product/123")
            if status == 200 and body["pricing"]["final_price"] == self.price:
                return None
            return f"GET /api/product/123: {status} {str(body)[:200]}"
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _run(self, worker: int) -> None:
        i = worker
        while not self._stop.is_set():
            failure = self._one(i)
            with self._lock:
                if failure is None:
                    self.ok += 1
                else:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {failure}")
            i += 1
            time.sleep(self.pause_s)

    def __enter__(self) -> Load:
        status, body = request(self.base, "GET", "/api/product/123")
        assert status == 200, body
        self.price = body["pricing"]["final_price"]
        for w in range(self.threads):
            t = threading.Thread(target=self._run, args=(w,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=15)

    def summary(self) -> str:
        return f"{self.ok} requests ok, {len(self.failures)} failed (product 123 at {self.price})"


@pytest.fixture(scope="session")
def admin() -> dict[str, str]:
    return {"Authorization": "Bearer " + secret("ADMIN_TOKEN")}


@pytest.fixture(scope="session")
def order_product(admin: dict[str, str]) -> int:
    """A product stocked deep enough for every order the client loops place."""
    status, body = request(INVENTORY, "PUT", "/api/inventory/777", {"available": 1_000_000}, admin)
    assert status == 200, body
    return 777


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        name = report.nodeid.rpartition("::")[2]
        print(f"\nk8s-test: check {name}: {report.outcome} in {report.duration:.1f}s")
