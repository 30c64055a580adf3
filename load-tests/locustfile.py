# Locust scenario of polyshop's public API (gateway :8000): product reads dominate, then batch
# reads, orders with an Idempotency-Key (some replayed, some for more than the stock), and
# stats. Run headless and bounded with `make loadtest` against `make run` or `make up`.
from __future__ import annotations

import logging
import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, events, task

# Product ids of the seed catalog (services/catalog/products.json has 1..1000).
PRODUCTS = 1000
# A quantity no product has: the order is refused with 409 insufficient_stock.
TOO_MANY = 10_000


class Shopper(FastHttpUser):
    """One customer browsing, sometimes ordering; ~1 request per 0.1-0.5 s."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.keys: list[tuple[str, dict[str, int]]] = []

    @task(50)
    def product(self) -> None:
        pid = random.randint(1, PRODUCTS)
        self.client.get(f"/api/product/{pid}", name="/api/product/{id}")

    @task(10)
    def products_batch(self) -> None:
        ids = ",".join(str(random.randint(1, PRODUCTS)) for _ in range(random.randint(2, 20)))
        self.client.get(f"/api/products?ids={ids}", name="/api/products?ids=...")

    @task(12)
    def order(self) -> None:
        qty = random.choice((1, 1, 2, 3, 12))
        body = {"product_id": random.randint(1, PRODUCTS), "quantity": qty}
        key = uuid.uuid4().hex
        self._order(key, body, expect=(201, 409))
        self.keys = [(key, body), *self.keys][:20]

    @task(3)
    def order_replay(self) -> None:
        # The same key and body again: the first answer comes back, never a second order.
        if not self.keys:
            return
        key, body = random.choice(self.keys)
        self._order(key, body, expect=(201, 409), name="/api/order (replay)")

    @task(2)
    def order_too_many(self) -> None:
        body = {"product_id": random.randint(1, PRODUCTS), "quantity": TOO_MANY}
        self._order(uuid.uuid4().hex, body, expect=(409,), name="/api/order (no stock)")

    @task(2)
    def stats(self) -> None:
        self.client.get("/api/stats")

    def _order(
        self, key: str, body: dict[str, int], expect: tuple[int, ...], name: str = "/api/order"
    ) -> None:
        with self.client.post(
            "/api/order", json=body, headers={"Idempotency-Key": key}, name=name,
            catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code in expect:
                resp.success()
            elif resp.status_code == 429:
                resp.failure("429 rate limited (RATE_LIMIT_RPS is per client IP)")
            else:
                resp.failure(f"unexpected {resp.status_code}: {resp.text[:200]}")


@events.test_start.add_listener
def _local_only(environment: Any, **_kwargs: Any) -> None:
    # Load goes to your own machine unless you say otherwise: a stray --host must not turn
    # a demo into a load test of someone else's service.
    host = environment.host or ""
    local = host.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if not local and os.environ.get("LOADTEST_ALLOW_REMOTE") != "1":
        logging.error("loadtest: refusing non-local host %r (LOADTEST_ALLOW_REMOTE=1 allows)", host)
        environment.process_exit_code = 2
        environment.runner.quit()
