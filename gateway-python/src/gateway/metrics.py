# Prometheus metrics of the gateway (observability.md names, labels and buckets), held in a
# registry owned by one app instance so tests can build many apps without collisions.
from __future__ import annotations

from decimal import Decimal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
# OpenTelemetry HTTP semantic conventions: http.request.method is one of the known methods,
# anything else `_OTHER`, so a client inventing methods cannot add label values.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "_OTHER"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.server = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            ["http_request_method", "http_route", "http_response_status_code"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.client = Histogram(
            "http_client_request_duration_seconds",
            "Duration of upstream HTTP calls.",
            ["http_request_method", "server_address", "http_response_status_code"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.orders = Counter(
            "polyshop_orders", "Orders by outcome.", ["status"], registry=self.registry
        )
        self.revenue = Counter(
            "polyshop_order_revenue", "Revenue of confirmed orders (USD).", registry=self.registry
        )
        self.breaker = Gauge(
            "polyshop_circuit_breaker_state",
            "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
            ["upstream"],
            registry=self.registry,
        )
        self.recovered_orders = Counter(
            "polyshop_orders_recovered",
            "Orders left pending (a crash, a lost answer) and resolved by the recovery loop.",
            ["status"],
            registry=self.registry,
        )
        for status in ("confirmed", "rejected", "failed"):
            self.orders.labels(status)
        for status in ("confirmed", "failed"):
            self.recovered_orders.labels(status)
        # labels() costs a few µs per call; the hot path reuses children from these caches.
        self._server_children: dict[tuple[str, str, int], Histogram] = {}
        self._client_children: dict[tuple[str, str, int], Histogram] = {}

    def observe_server(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method_label(method)
        key = (method, route, status)
        child = self._server_children.get(key)
        if child is None:
            child = self.server.labels(method, route, str(status))
            self._server_children[key] = child
        child.observe(seconds)

    def observe_client(self, method: str, upstream: str, status: int, seconds: float) -> None:
        method = method_label(method)
        key = (method, upstream, status)
        child = self._client_children.get(key)
        if child is None:
            child = self.client.labels(method, upstream, str(status))
            self._client_children[key] = child
        child.observe(seconds)

    def order(self, status: str, revenue: Decimal | None = None) -> None:
        self.orders.labels(status).inc()
        if revenue is not None:
            self.revenue.inc(float(revenue))

    def recovered(self, status: str) -> None:
        self.recovered_orders.labels(status).inc()

    def set_breaker(self, upstream: str, state: str) -> None:
        self.breaker.labels(upstream).set(BREAKER_STATES[state])

    def render(self) -> bytes:
        return generate_latest(self.registry)
