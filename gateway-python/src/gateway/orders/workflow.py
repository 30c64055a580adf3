# The order workflow (docs/DESIGN.md's saga): reserve -> price -> store the order (pending) ->
# commit -> confirmed, or failed with the hold given back. Every decision about a hold is
# taken from the state inventory answers for it, never from a guess:
#   committed -> the order is confirmed; held -> release it, then failed;
#   released or expired -> failed; no answer -> the order stays pending and the recovery
#   loop resolves it later from the same answers.
# The deadline is an argument; failures are the domain errors of domain.py. No web framework
# and no status codes here: the idempotency layer turns outcomes into answers.
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from gateway.clients.base import UpstreamError
from gateway.clients.inventory import Hold, InventoryClient, Refused
from gateway.clients.pricing import PricingClient
from gateway.metrics import Metrics
from gateway.money import round_money, total_price
from gateway.orders.domain import (
    DependencyDown,
    HoldExpired,
    HoldState,
    IdempotencyConflict,
    Order,
    OrderError,
    OrderStatus,
    OutOfStock,
    UnknownProduct,
    outcome_of,
)
from gateway.store import Store, StoreUnavailable, within

log = logging.getLogger("gateway.orders")

_BACKOFF_S = (0.1, 0.3, 1.0, 2.0)


def compensation_budget_s(upstream_timeout_s: float) -> float:
    """How long giving a hold back may take after the request's own deadline: every
    attempt's timeout plus the pauses between them. The idempotency lease covers it, so a
    retry of the same key never overlaps a compensation still in progress."""
    return len(_BACKOFF_S) * upstream_timeout_s + sum(_BACKOFF_S)


# A store call that must land after the deadline (saving a decided outcome) gets this long.
_DETACHED_STORE_S = 1.0


def _dependency(exc: UpstreamError) -> DependencyDown:
    return DependencyDown(f"{exc.upstream} service", exc.kind, exc.retry_after)


class Aftercare:
    """Work one execution leaves behind (giving a hold back) so that its answer need not
    wait for it. The idempotency layer settles the execution's key only after it is done."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(work))

    async def wait(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks)


class OrderWorkflow:
    def __init__(
        self,
        inventory: InventoryClient,
        pricing: PricingClient,
        store: Store,
        metrics: Metrics,
        upstream_timeout_s: float,
    ) -> None:
        self.inventory = inventory
        self.pricing = pricing
        self.store = store
        self.metrics = metrics
        self.compensation_budget_s = compensation_budget_s(upstream_timeout_s)

    async def place(
        self, product_id: int, quantity: int, intent: str, deadline: float, after: Aftercare
    ) -> Order:
        """Places one purchase intent and answers the confirmed order, or raises an OrderError.

        intent is inventory's idempotency key: the same intent always maps to the same live
        hold, so running place() again for it (a client retry, a takeover after a crash)
        continues the first execution instead of selling twice. Compensation that need not
        delay the answer goes to after.
        """
        try:
            order = await self._place(product_id, quantity, intent, deadline, after)
        except OrderError as exc:
            # observability.md: rejected = a 4xx answer, failed = a 5xx one.
            self.metrics.order("failed" if isinstance(exc, DependencyDown) else "rejected")
            raise
        return order

    async def _place(
        self, product_id: int, quantity: int, intent: str, deadline: float, after: Aftercare
    ) -> Order:
        hold = await self._reserve(product_id, quantity, intent, deadline, after)
        try:
            order = await self._order_for(hold, deadline)
        except BaseException:
            # No order was stored for the hold (pricing or the store failed, or we are being
            # cancelled): nothing can resolve it later, so give it back.
            after.spawn(self._give_back(hold))
            raise
        if order.status == "confirmed":
            return order  # an earlier execution of this intent finished it
        if order.status == "failed":
            raise HoldExpired
        return await self._commit(hold, order, deadline)

    async def _reserve(
        self, product_id: int, quantity: int, intent: str, deadline: float, after: Aftercare
    ) -> Hold:
        try:
            result = await self.inventory.reserve(product_id, quantity, intent, deadline)
        except UpstreamError as exc:
            if exc.maybe_applied:
                # The hold may exist: replaying the intent finds it (the same key answers
                # the same hold), and it goes back on sale.
                log.warning("reserve_unknown", extra={"intent": intent, "error": str(exc)})
                after.spawn(self._undo_reserve(product_id, quantity, intent))
            raise _dependency(exc) from None
        if isinstance(result, Refused):
            if result.code == "insufficient_stock":
                raise OutOfStock(product_id)
            if result.code == "product_not_found":
                raise UnknownProduct(product_id)
            raise IdempotencyConflict
        return result

    async def _order_for(self, hold: Hold, deadline: float) -> Order:
        """The hold's order: the one an earlier execution stored, or a new pending one
        priced on the stock and demand before the hold."""
        existing = await within(self.store.order_for_hold(hold.reservation_id), deadline)
        if existing is not None:
            return existing
        try:
            unit = await self.pricing.unit_price(
                hold.product_id,
                hold.quantity,
                hold.available_before,
                hold.recent_demand_before,
                deadline,
            )
        except UpstreamError as exc:
            raise _dependency(exc) from None
        if unit is None:
            raise UnknownProduct(hold.product_id)
        unit = round_money(unit)
        return await within(
            self.store.create_order(
                hold.product_id,
                hold.quantity,
                unit,
                total_price(unit, hold.quantity),
                hold.reservation_id,
            ),
            deadline,
        )

    async def _commit(self, hold: Hold, order: Order, deadline: float) -> Order:
        """Commits the hold and concludes the order from the state inventory answers. When
        the commit's outcome is unknown (no answer, or no time left), releasing finds out:
        release answers committed if the commit landed, and gives the units back if not."""
        cause: UpstreamError | None = None
        try:
            state = await self.inventory.commit(hold, deadline)
        except UpstreamError as exc:
            log.warning(
                "commit_unknown",
                extra={"reservation_id": hold.reservation_id, "error": str(exc)},
            )
            cause, state = exc, None
        if state is None or state == "held":
            # No answer (or no such hold, or one still held): release decides it.
            state = await asyncio.shield(self._settle(hold.reservation_id, hold.product_id))
            if state is None:
                # Nobody knows yet; the order stays pending and recovery resolves it.
                raise _dependency(cause) if cause else DependencyDown("inventory service")
        order = await self._finish(order, outcome_of(state) or "failed", deadline)
        if order.status == "confirmed":
            return order
        if state == "released" and cause is not None:
            raise _dependency(cause)  # we gave it back because inventory did not answer
        raise HoldExpired

    async def _finish(self, order: Order, final: OrderStatus, deadline: float) -> Order:
        """Saves a decided outcome (counted once, by whoever moves the order)."""
        budget = max(deadline - time.monotonic(), _DETACHED_STORE_S)
        try:
            async with asyncio.timeout(budget):
                saved, moved = await self.store.set_status(order.order_id, final)
        except (StoreUnavailable, TimeoutError) as exc:
            # The outcome is decided by the hold; the stored copy stays pending until the
            # recovery loop reads the same answer from inventory.
            log.error(
                "order_status_not_saved", extra={"order_id": order.order_id, "error": str(exc)}
            )
            return order.moved(final)
        if saved is None:
            return order.moved(final)
        if moved:
            self._count(saved)
        return saved

    def _count(self, order: Order) -> None:
        """Counts a confirmation; called only by whoever moved the order, so once."""
        if order.status != "confirmed":
            return
        self.metrics.order("confirmed", order.total_price)
        log.info(
            "order_confirmed",
            extra={
                "order_id": order.order_id,
                "product_id": order.product_id,
                "quantity": order.quantity,
            },
        )

    async def resolve(self, order: Order) -> Order | None:
        """Resolves an order left pending (a crash, a lost answer) from its hold's state;
        answers the order if this call moved it. Safe to run from several replicas."""
        state = await self._settle(order.reservation_id, order.product_id, attempts=1)
        if state is None:
            return None  # inventory unreachable: try again next round
        final: OrderStatus = outcome_of(state) or "failed"
        saved, moved = await self.store.set_status(order.order_id, final)
        if not moved or saved is None:
            return None
        self._count(saved)
        self.metrics.recovered(final)
        log.warning(
            "order_recovered",
            extra={"order_id": order.order_id, "status": final, "hold": state},
        )
        return saved

    async def _settle(
        self, reservation_id: str, product_id: int, attempts: int = len(_BACKOFF_S)
    ) -> HoldState | None:
        """Releases the hold (detached from any deadline) and answers its final state:
        released or expired, committed if it was sold, "expired" if inventory has no such
        hold any more (its retention passed), None if inventory could not be reached."""
        try:
            async with asyncio.timeout(self.compensation_budget_s):
                for i in range(attempts):
                    try:
                        state = await self.inventory.release(reservation_id, product_id, None)
                    except UpstreamError as exc:
                        log.warning(
                            "release_failed",
                            extra={"reservation_id": reservation_id, "error": str(exc)},
                        )
                        if i + 1 < attempts:
                            await asyncio.sleep(_BACKOFF_S[i])
                        continue
                    return state if state is not None else "expired"
        except TimeoutError:
            pass
        log.error("release_gave_up", extra={"reservation_id": reservation_id})
        return None

    async def _give_back(self, hold: Hold) -> None:
        state = await self._settle(hold.reservation_id, hold.product_id)
        if state == "committed":
            # Another execution of the same intent sold it; its order records the sale.
            log.warning("give_back_found_sold", extra={"reservation_id": hold.reservation_id})

    async def _undo_reserve(self, product_id: int, quantity: int, intent: str) -> None:
        try:
            async with asyncio.timeout(self.compensation_budget_s):
                for delay in _BACKOFF_S:
                    try:
                        result = await self.inventory.reserve(product_id, quantity, intent, None)
                    except UpstreamError:
                        await asyncio.sleep(delay)
                        continue
                    # Only a held hold with no order is given back here: one with an order
                    # belongs to a running execution (or to recovery), which decides it.
                    if (
                        isinstance(result, Hold)
                        and result.state == "held"
                        and await self.store.order_for_hold(result.reservation_id) is None
                    ):
                        await self._give_back(result)
                    return
        except (TimeoutError, StoreUnavailable) as exc:
            log.error("undo_reserve_failed", extra={"intent": intent, "error": str(exc)})
