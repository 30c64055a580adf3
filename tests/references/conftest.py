# Starts the Python references of bench/references (pricing, inventory, monolith) as real
# uvicorn processes on free ports, as make bench runs them, and hands each test an HTTP
# client. Stopped by PID at the end of the session.
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import free_port

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "services" / "catalog" / "products.json"
VECTORS = ROOT / "services" / "contracts" / "pricing-vectors.json"
ADMIN_TOKEN = "references-admin-token"
START_TIMEOUT_S = 30.0
APPS = ("pricing", "inventory", "monolith")


class Reference:
    def __init__(self, name: str, logdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logdir / f"{name}.log"
        argv = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "--factory",
            f"references.{name}:create_app", "--host", "127.0.0.1", "--port", str(self.port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        env = {**os.environ, "ADMIN_TOKEN": ADMIN_TOKEN}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready in {START_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="session")
def references(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Reference]]:
    logdir = tmp_path_factory.mktemp("references")
    started: dict[str, Reference] = {}
    try:
        for name in APPS:  # all three start at once; then each is waited for
            started[name] = Reference(name, logdir)
        for ref in started.values():
            ref.wait_ready()
        yield started
    finally:
        for ref in started.values():
            ref.stop()


def _client(ref: Reference) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ref.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def pricing(references: dict[str, Reference]) -> Iterator[httpx.Client]:
    yield from _client(references["pricing"])


@pytest.fixture(scope="session")
def inventory(references: dict[str, Reference]) -> Iterator[httpx.Client]:
    yield from _client(references["inventory"])


@pytest.fixture(scope="session")
def monolith(references: dict[str, Reference]) -> Iterator[httpx.Client]:
    yield from _client(references["monolith"])


@pytest.fixture(scope="session")
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def seed_products() -> dict[int, dict[str, Any]]:
    return {p["id"]: p for p in json.loads(CATALOG.read_text())["products"]}


def pricing_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The shared error shape of services/contracts/errors.md."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    err: dict[str, Any] = body["error"]
    assert err["code"] == code, body
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["request_id"], str) and err["request_id"]
    assert set(err) <= {"code", "message", "request_id", "details"}
    return err
