# The order saga (DESIGN.md): reserve -> price -> store -> commit, releasing the hold on any
# failure after reserve, behind Idempotency-Key handling that never creates a second order.
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.clients.base import UpstreamUnavailable
from gateway.clients.inventory import InventoryClient, Reservation
from gateway.clients.pricing import PricingClient
from gateway.context import current
from gateway.errors import ApiError, error_body
from gateway.metrics import Metrics
from gateway.models import OrderRequest
from gateway.money import dumps, round_money, total_price
from gateway.store import IdemRecord, Store, StoreUnavailable, key_hash

log = logging.getLogger("gateway.saga")
RELEASE_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


@dataclass(slots=True)
class OrderAnswer:
    status: int
    body: bytes
    replayed: bool = False


def fingerprint(req: OrderRequest) -> str:
    # The validated request, not the raw bytes: whitespace or key order is not a new order.
    return hashlib.sha256(f"{req.product_id}:{req.quantity}".encode()).hexdigest()


def downstream_key(client_key: str | None, generation: int) -> str:
    """The idempotency_key sent to inventory's reserve.

    The client's key itself on its first execution, so a retry after a gateway crash gets
    the same hold back instead of a second one. After an execution failed and its hold was
    released, a fresh generation keeps the retry from being handed the released hold.
    Without a client key a per-request key still makes our own reserve retries safe.
    """
    if client_key is None:
        return f"gw-{uuid.uuid4().hex}"
    if generation == 0:
        return client_key
    return f"{key_hash(client_key)[:48]}.{generation}"


def order_json(order: dict[str, Any], processing_time_ms: float) -> bytes:
    out = dict(order)
    out["unit_price"] = Decimal(order["unit_price"])
    out["total_price"] = Decimal(order["total_price"])
    out["processing_time_ms"] = processing_time_ms
    return dumps(out)


def _elapsed_ms() -> float:
    ctx = current()
    return ctx.elapsed_ms() if ctx else 0.0


def _remaining_s() -> float:
    ctx = current()
    return max(0.0, ctx.deadline - time.monotonic()) if ctx else 2.5


class OrderService:
    def __init__(
        self,
        inventory: InventoryClient,
        pricing: PricingClient,
        store: Store,
        metrics: Metrics,
    ) -> None:
        self.inventory = inventory
        self.pricing = pricing
        self.store = store
        self.metrics = metrics
        self._background: set[asyncio.Task[None]] = set()

    async def place(self, req: OrderRequest, idempotency_key: str | None) -> OrderAnswer:
        if idempotency_key is None:
            return await self._execute(req, downstream_key(None, 0))
        fp = fingerprint(req)
        for _ in range(3):
            claimed, record = await self._store(
                self.store.idem_claim(idempotency_key, fp, _remaining_s() + 5.0)
            )
            if claimed:
                return await self._execute_owned(req, idempotency_key, record)
            if record.fingerprint != fp:
                raise ApiError(
                    "idempotency_conflict",
                    "this Idempotency-Key was used with a different request body",
                )
            if record.state == "pending":
                waited = await self._store(
                    self.store.idem_wait(idempotency_key, max(0.0, _remaining_s() - 0.05))
                )
                if waited is None:
                    continue  # the first execution failed and gave the key back: run it now
                if waited.fingerprint != fp:
                    raise ApiError(
                        "idempotency_conflict",
                        "this Idempotency-Key was used with a different request body",
                    )
                if waited.state == "pending":
                    raise ApiError(
                        "request_in_progress",
                        "a request with this Idempotency-Key is still running; retry later",
                    )
                record = waited
            return OrderAnswer(record.status, record.body, replayed=True)
        raise ApiError(
            "request_in_progress", "a request with this Idempotency-Key is still running"
        )

    async def _execute_owned(self, req: OrderRequest, key: str, record: IdemRecord) -> OrderAnswer:
        try:
            answer = await self._execute(req, downstream_key(key, record.generation))
        except ApiError as exc:
            if exc.status >= 500:
                await self._abandon(key, record.generation)
            else:
                # A business refusal (409, 404) is the answer to this key, as payment APIs do.
                body = error_body(exc.code, exc.message, exc.details)
                done = IdemRecord(record.fingerprint, "done", exc.status, body, record.generation)
                await self._complete(key, done)
                return OrderAnswer(exc.status, body)
            raise
        except BaseException:
            await self._abandon(key, record.generation)
            raise
        done = IdemRecord(record.fingerprint, "done", answer.status, answer.body, record.generation)
        await self._complete(key, done)
        return answer

    async def _complete(self, key: str, record: IdemRecord) -> None:
        try:
            await self.store.idem_complete(key, record)
        except StoreUnavailable as exc:
            # The order itself is done. A replay after the pending lease runs out executes
            # again with the same downstream key: inventory hands back the committed hold,
            # whose commit answers 409 reservation_not_pending. No second sale, though the
            # client does not get the first answer back.
            log.error("idempotency_store_failed", extra={"error": str(exc)})

    async def _abandon(self, key: str, generation: int) -> None:
        try:
            await asyncio.shield(self.store.idem_abandon(key, generation))
        except StoreUnavailable as exc:
            log.error("idempotency_store_failed", extra={"error": str(exc)})

    @staticmethod
    async def _store(awaitable: Any) -> Any:
        try:
            return await awaitable
        except StoreUnavailable as exc:
            log.error("store_unavailable", extra={"error": str(exc)})
            raise ApiError("upstream_unavailable", "order store unavailable") from None

    async def _execute(self, req: OrderRequest, reserve_key: str) -> OrderAnswer:
        try:
            answer = await self._saga(req, reserve_key)
        except ApiError as exc:
            self.metrics.order("rejected" if exc.status < 500 else "failed")
            raise
        except UpstreamUnavailable as exc:
            self.metrics.order("failed")
            raise exc.to_api_error() from None
        except StoreUnavailable as exc:
            self.metrics.order("failed")
            log.error("store_unavailable", extra={"error": str(exc)})
            raise ApiError("upstream_unavailable", "order store unavailable") from None
        return answer

    async def _saga(self, req: OrderRequest, reserve_key: str) -> OrderAnswer:
        hold = await self.inventory.reserve(req.product_id, req.quantity, reserve_key)
        order: dict[str, Any] | None = None
        try:
            unit = round_money(
                await self.pricing.unit_price(
                    req.product_id, req.quantity, hold.available_before, hold.recent_demand_before
                )
            )
            total = total_price(unit, req.quantity)
            order = {
                "order_id": await self.store.next_order_id(),
                "product_id": req.product_id,
                "quantity": req.quantity,
                "unit_price": str(unit),
                "total_price": str(total),
                "reservation_id": hold.reservation_id,
                "status": "pending",
            }
            await self.store.put_order(order)
            try:
                await self.inventory.commit(hold)
            except UpstreamUnavailable:
                # The commit may have landed and only its answer been lost (a timeout):
                # releasing now would leave sold units behind a failed order. Ask again.
                await self.inventory.commit(hold, recheck=True)
        except BaseException as exc:
            log.warning(
                "order_compensating",
                extra={"reservation_id": hold.reservation_id, "error": type(exc).__name__},
            )
            await asyncio.shield(self._compensate(hold, order))
            raise
        order["status"] = "confirmed"
        try:
            await self.store.put_order(order)
        except StoreUnavailable as exc:
            # The units are sold; the stored copy keeps "pending" until the store is back.
            log.error(
                "order_status_not_saved", extra={"order_id": order["order_id"], "error": str(exc)}
            )
        self.metrics.order("confirmed", total)
        log.info(
            "order_confirmed",
            extra={
                "order_id": order["order_id"],
                "product_id": req.product_id,
                "quantity": req.quantity,
            },
        )
        return OrderAnswer(201, order_json(order, _elapsed_ms()))

    async def _compensate(self, hold: Reservation, order: dict[str, Any] | None) -> None:
        if order is not None:
            order["status"] = "failed"
            try:
                await self.store.put_order(order)
            except StoreUnavailable:
                log.error("order_status_not_saved", extra={"order_id": order["order_id"]})
        if await self._release_once(hold):
            return
        # Keep trying off the request path; the hold's TTL is the last safety net.
        task = asyncio.create_task(self._release_retries(hold))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release_once(self, hold: Reservation) -> bool:
        reservation_id = hold.reservation_id
        try:
            await self.inventory.release(hold, detached=True)
        except (UpstreamUnavailable, ApiError) as exc:
            log.warning(
                "release_failed", extra={"reservation_id": reservation_id, "error": str(exc)}
            )
            return False
        log.info("hold_released", extra={"reservation_id": reservation_id})
        return True

    async def _release_retries(self, hold: Reservation) -> None:
        for delay in RELEASE_BACKOFF_S:
            await asyncio.sleep(delay)
            if await self._release_once(hold):
                return
        log.error("release_gave_up", extra={"reservation_id": hold.reservation_id})

    async def get(self, order_id: int) -> bytes:
        try:
            order = await self.store.get_order(order_id)
        except StoreUnavailable as exc:
            log.error("store_unavailable", extra={"error": str(exc)})
            raise ApiError("upstream_unavailable", "order store unavailable") from None
        if order is None:
            raise ApiError("order_not_found", f"order {order_id} does not exist")
        return order_json(order, _elapsed_ms())

    async def drain(self) -> None:
        """Lets pending release retries finish (bounded) at shutdown."""
        if self._background:
            await asyncio.wait(self._background, timeout=5)
