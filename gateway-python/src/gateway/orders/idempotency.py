# The Idempotency-Key layer of POST /api/order, and the only order code that sees status codes
# and bytes: claim the key (fenced by an owner token), wait for a running first request,
# replay a stored answer, or run the workflow and store its answer.
#
# The workflow runs in its own task: the client gets its answer by its deadline, while a
# compensation that must outlive the deadline (giving a hold back) finishes under the key's
# lease. The key is settled when the workflow ends: a final answer (201, or a 4xx refusal, as
# payment APIs keep them) is stored for 24 h; a 503 gives the key up so a retry runs the
# intent again, which continues from inventory's hold instead of selling twice.
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import ApiError, error_body, from_domain
from gateway.money import dumps
from gateway.orders.domain import (
    DependencyDown,
    IdempotencyConflict,
    Order,
    OrderError,
    RequestInProgress,
    UnknownOrder,
)
from gateway.orders.workflow import Aftercare, OrderWorkflow
from gateway.store import Store, StoreUnavailable, key_hash, within

log = logging.getLogger("gateway.idempotency")
# A key's lease outlasts its request by the longest compensation plus this margin, so a
# retry cannot take the key over while the first execution is still giving a hold back.
LEASE_MARGIN_S = 1.0
_SETTLE_TIMEOUT_S = 1.0
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


def fingerprint(product_id: int, quantity: int) -> str:
    # The validated request, not the raw bytes: whitespace or key order is not a new order.
    return hashlib.sha256(f"{product_id}:{quantity}".encode()).hexdigest()


def intent_of(client_key: str | None) -> str:
    """Inventory's idempotency key for a purchase intent: derived from the client's key and
    the same for every retry of it, so all its executions share one live hold. Without a
    client key, each request is its own intent (our own reserve retries stay safe)."""
    if client_key is None:
        return f"gw-{uuid.uuid4().hex}"
    return f"ik-{key_hash(client_key)[:48]}"


def order_body(order: Order, processing_time_ms: float) -> bytes:
    out = order.public()
    out["processing_time_ms"] = processing_time_ms
    return dumps(out)


def _error(exc: ApiError) -> Answer:
    return Answer(exc.status, error_body(exc.code, exc.message, exc.details), exc.headers)


class IdempotentOrders:
    def __init__(self, workflow: OrderWorkflow, store: Store) -> None:
        self.workflow = workflow
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(
        self,
        product_id: int,
        quantity: int,
        key: str | None,
        deadline: float,
        elapsed_ms: Callable[[], float],
    ) -> Answer:
        if key is None:
            return await self._run(product_id, quantity, None, "", deadline, elapsed_ms)
        fp = fingerprint(product_id, quantity)
        try:
            for _ in range(3):
                lease = (
                    max(0.0, deadline - time.monotonic())
                    + self.workflow.compensation_budget_s
                    + LEASE_MARGIN_S
                )
                claim = await within(self.store.idem_claim(key, fp, lease), deadline)
                if claim.owned:
                    return await self._run(
                        product_id, quantity, key, claim.record.owner, deadline, elapsed_ms
                    )
                record = claim.record
                if record.fingerprint != fp:
                    raise IdempotencyConflict
                if record.state == "pending":
                    wait = max(0.0, deadline - time.monotonic() - 0.05)
                    waited = await within(self.store.idem_wait(key, wait), deadline)
                    if waited is None:
                        continue  # the first execution gave the key up: run it now
                    if waited.fingerprint != fp:
                        raise IdempotencyConflict
                    if waited.state == "pending":
                        raise RequestInProgress
                    record = waited
                headers = {"Idempotent-Replayed": "true"}
                return Answer(record.status, record.body, headers, replayed=True)
            raise RequestInProgress
        except OrderError as exc:
            return _error(from_domain(exc))

    async def _run(
        self,
        product_id: int,
        quantity: int,
        key: str | None,
        owner: str,
        deadline: float,
        elapsed_ms: Callable[[], float],
    ) -> Answer:
        after = Aftercare()
        task = asyncio.create_task(
            self.workflow.place(product_id, quantity, intent_of(key), deadline, after)
        )
        try:
            # The 50 ms past the deadline lets an answer that is already on its way land.
            budget = max(0.0, deadline - time.monotonic()) + 0.05
            await asyncio.wait_for(asyncio.shield(task), budget)
        except TimeoutError:
            self._settle_later(task, after, key, owner, elapsed_ms)
            return _error(from_domain(DependencyDown("order service", "deadline")))
        except asyncio.CancelledError:
            # The client left or the server is stopping: the workflow goes on, and settles
            # the key when it ends.
            self._settle_later(task, after, key, owner, elapsed_ms)
            raise
        except OrderError:
            pass  # read from the task below
        except BaseException:
            self._settle_later(task, after, key, owner, elapsed_ms)
            raise
        answer = self._answer(task, elapsed_ms)
        if after.tasks:
            self._settle_later(task, after, key, owner, elapsed_ms)
        elif key is not None:
            await self._settle(key, owner, answer)
        return answer

    @staticmethod
    def _answer(task: asyncio.Task[Order], elapsed_ms: Callable[[], float]) -> Answer:
        exc = task.exception()
        if exc is None:
            return Answer(201, order_body(task.result(), elapsed_ms()))
        if isinstance(exc, OrderError):
            return _error(from_domain(exc))
        raise exc

    def _settle_later(
        self,
        task: asyncio.Task[Order],
        after: Aftercare,
        key: str | None,
        owner: str,
        elapsed_ms: Callable[[], float],
    ) -> None:
        """Settles the key once the workflow and its aftercare are done."""

        async def settle() -> None:
            await asyncio.wait([task])
            await after.wait()
            try:
                answer: Answer | None = self._answer(task, elapsed_ms)
            except BaseException:  # a bug or a cancellation: no answer to keep
                log.exception("order_workflow_failed")
                answer = None
            if key is not None:
                await self._settle(key, owner, answer)

        pending = asyncio.create_task(settle())
        self._tasks.add(pending)
        pending.add_done_callback(self._tasks.discard)

    async def _settle(self, key: str, owner: str, answer: Answer | None) -> None:
        """Stores a final answer, or gives the key up (a 5xx, or no answer at all)."""
        try:
            async with asyncio.timeout(_SETTLE_TIMEOUT_S):
                if answer is not None and answer.status < 500:
                    done = await self.store.idem_complete(key, owner, answer.status, answer.body)
                else:
                    done = await self.store.idem_release(key, owner)
        except (StoreUnavailable, TimeoutError) as exc:
            # The outcome itself is safe: a retry after the lease runs the intent again and
            # continues from inventory's hold. Only the stored first answer is missing.
            log.error("idempotency_store_failed", extra={"error": str(exc) or "timeout"})
            return
        if not done:
            # Our lease ran out and another execution owns the key now: it answers.
            log.warning("idempotency_key_lost", extra={"status": answer.status if answer else 0})

    async def get(self, order_id: int, deadline: float, elapsed_ms: Callable[[], float]) -> Answer:
        try:
            order = await within(self.store.get_order(order_id), deadline)
            if order is None:
                raise UnknownOrder(order_id)
        except OrderError as exc:
            return _error(from_domain(exc))
        return Answer(200, order_body(order, elapsed_ms()))

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Lets workflows that outlived their requests settle their keys (bounded)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
