# The recovery loop: orders left pending by a crash, a kill or a lost answer are resolved from
# their hold's state in inventory (committed -> confirmed; held -> released, then failed;
# released or expired -> failed). Every gateway replica runs it; that is safe because each
# decision reads inventory's one answer and an order moves out of pending only once.
from __future__ import annotations

import asyncio
import logging

from gateway.orders.workflow import OrderWorkflow
from gateway.store import Store, StoreUnavailable

log = logging.getLogger("gateway.recovery")
BATCH = 100


class Recovery:
    def __init__(self, workflow: OrderWorkflow, store: Store, older_than_s: float) -> None:
        self.workflow = workflow
        self.store = store
        self.older_than_s = older_than_s
        # A pending order is resolved at most older_than_s + interval after it was made.
        self.interval_s = max(0.1, min(5.0, older_than_s / 4))

    async def sweep(self) -> int:
        """One round: resolves the pending orders old enough; answers how many it moved."""
        try:
            orders = await self.store.pending_orders(self.older_than_s, BATCH)
        except StoreUnavailable as exc:
            log.warning("recovery_store_unavailable", extra={"error": str(exc)})
            return 0
        moved = 0
        for order in orders:
            try:
                if await self.workflow.resolve(order) is not None:
                    moved += 1
            except StoreUnavailable as exc:
                log.warning("recovery_store_unavailable", extra={"error": str(exc)})
                break
        return moved

    async def run(self) -> None:
        """Sweeps every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                while await self.sweep() >= BATCH:
                    pass  # a backlog: keep going
            except Exception:
                log.exception("recovery_failed")
