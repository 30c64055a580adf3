# /health, /ready (own store only), /metrics names and labels, and the JSON log lines.
from __future__ import annotations

import json
import logging
from typing import Any

from gateway.logs import JsonFormatter

from conftest import FakeInventory, Gateway, free_port

ORDER = {"product_id": 123, "quantity": 2}


async def test_health_touches_nothing(gateway_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw: Gateway = await gateway_factory(
        pricing_url=dead, inventory_url=dead, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    resp = await gw.client.get("/health")
    assert resp.json() == {"status": "ok", "service": "gateway", "version": "0.1.0"}


async def test_ready_memory_ignores_upstreams(gateway_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw: Gateway = await gateway_factory(pricing_url=dead, inventory_url=dead)
    resp = await gw.client.get("/ready")
    assert (resp.status_code, resp.json()) == (200, {"status": "ready"})


async def test_ready_redis(gateway_factory: Any, redis_url: str) -> None:
    gw: Gateway = await gateway_factory(redis_url=redis_url)
    assert (await gw.client.get("/ready")).json() == {"status": "ready"}
    down: Gateway = await gateway_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    resp = await down.client.get("/ready")
    assert resp.status_code == 503
    assert resp.json() == {"status": "unavailable", "checks": {"redis": "unreachable"}}


async def test_stats_live_and_unavailable_slots(gw: Gateway, gateway_factory: Any) -> None:
    body = (await gw.client.get("/api/stats")).json()
    assert body["api_gateway"]["service"] == "api-gateway"
    assert body["api_gateway"]["uptime"] >= 0
    assert body["pricing_service"]["language"] == "Rust"
    assert body["inventory_service"]["active_goroutines"] == 4
    dead = f"http://127.0.0.1:{free_port()}"
    lonely: Gateway = await gateway_factory(pricing_url=dead, inventory_url=dead)
    body = (await lonely.client.get("/api/stats")).json()
    assert body["pricing_service"] == {"status": "unavailable"}
    assert body["inventory_service"] == {"status": "unavailable"}


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


async def test_metrics(gw: Gateway, fake_inventory: FakeInventory) -> None:
    await gw.client.get("/api/product/123")
    await gw.client.get("/api/product/123")
    await gw.client.post("/api/order", json=ORDER)
    await gw.client.post("/api/order", json={"product_id": 7, "quantity": 50})
    fake_inventory.fail["reserve"] = 500
    await gw.client.post("/api/order", json=ORDER)
    await gw.client.get("/health")
    await gw.client.get("/nowhere/42")
    text = (await gw.client.get("/metrics")).text
    counts = _samples(text, "http_server_request_duration_seconds_count")
    assert (
        counts[
            'http_server_request_duration_seconds_count{http_request_method="GET",'
            'http_response_status_code="200",http_route="/api/product/{id}"}'
        ]
        == 2
    )
    assert not any("/health" in k or "/metrics" in k or "42" in k for k in counts)
    assert any('http_route="unmatched"' in k for k in counts)
    orders = _samples(text, "polyshop_orders_total")
    assert orders['polyshop_orders_total{status="confirmed"}'] == 1
    assert orders['polyshop_orders_total{status="rejected"}'] == 1
    assert orders['polyshop_orders_total{status="failed"}'] == 1
    assert _samples(text, "polyshop_order_revenue_total")["polyshop_order_revenue_total"] == 328.7
    client = _samples(text, "http_client_request_duration_seconds_count")
    assert any('server_address="pricing"' in k for k in client)
    assert any('server_address="inventory"' in k and 'code="500"' in k for k in client)
    assert 'polyshop_circuit_breaker_state{upstream="pricing"} 0.0' in text
    assert "process_resident_memory_bytes" in text
    assert 'le="0.0005"' in text


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Formatted at emit time, as in production: the request context is the live one.
        self.lines.append(json.loads(self.format(record)))


async def test_access_log_line(gw: Gateway) -> None:
    handler = _Lines()
    logger = logging.getLogger("gateway.http")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await gw.client.get("/api/product/123", headers={"X-Request-Id": "rid-1"})
        await gw.client.get("/health")
    finally:
        logger.removeHandler(handler)
    lines = [line for line in handler.lines if line["msg"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["service"] == "gateway"
    assert line["level"] == "info"
    assert line["route"] == "/api/product/{id}"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["request_id"] == "rid-1"
    assert len(line["trace_id"]) == 32 and len(line["span_id"]) == 16
    assert line["ts"].endswith("Z") and "T" in line["ts"]
    assert isinstance(line["duration_ms"], float)


async def test_probes_answer_errors_in_the_shared_shape(gw: Gateway) -> None:
    resp = await gw.client.post("/health")
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "method_not_allowed"
    assert resp.json()["error"]["request_id"] == resp.headers["x-request-id"]
    # Probes ignore request deadlines: a load balancer's health check is not a request.
    assert (
        await gw.client.get("/health", headers={"X-Request-Deadline-Ms": "0"})
    ).status_code == 200


def test_uvicorn_sentences_become_an_event_with_detail() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, "", 0, "Started server process [%d]", (42,), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["detail"], line["level"]) == (
        "server",
        "Started server process [42]",
        "info",
    )
    assert "color_message" not in line


async def test_invented_methods_are_labelled_other(gw: Gateway) -> None:
    for method in ("FOO1", "FOO2"):
        resp = await gw.client.request(method, "/api/product/123")
        assert resp.status_code == 405, (method, resp.text)
    resp = await gw.client.request("FOO1", "/nowhere")
    assert resp.status_code in (404, 405)
    counts = _samples((await gw.client.get("/metrics")).text, "http_server_request_duration")
    methods = {k.split('http_request_method="')[1].split('"')[0] for k in counts if "method" in k}
    assert methods == {"_OTHER"}
