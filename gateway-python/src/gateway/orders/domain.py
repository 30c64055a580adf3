# The order domain: an order, its state machine (pending -> confirmed | failed) and the
# failures of the order workflow in domain terms. No web framework, no HTTP status, no I/O:
# errors.py maps these failures to the shared error JSON in one table.
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

OrderStatus = Literal["pending", "confirmed", "failed"]
HoldState = Literal["held", "committed", "released", "expired"]

# The only moves an order makes. confirmed and failed are final, so two executions (or a
# saga and the recovery loop) that decide from inventory's one answer can never disagree.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    "pending": frozenset({"confirmed", "failed"}),
    "confirmed": frozenset(),
    "failed": frozenset(),
}


def outcome_of(hold: HoldState) -> OrderStatus | None:
    """What an order becomes given its hold's state; None while the hold is still held."""
    if hold == "committed":
        return "confirmed"
    if hold in ("released", "expired"):
        return "failed"
    return None


@dataclass(frozen=True, slots=True)
class Order:
    """An order. It is made for exactly one inventory hold (reservation_id), before that
    hold is committed, so every committed hold has an order to resolve."""

    order_id: int
    product_id: int
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    reservation_id: str
    status: OrderStatus
    created_ms: int  # the store's clock at creation, for the recovery loop

    def moved(self, to: OrderStatus) -> Order:
        if to not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, to)
        return replace(self, status=to)

    def public(self) -> dict[str, Any]:
        """The fields of the public answer (money as Decimal; the caller serialises)."""
        return {
            "order_id": self.order_id,
            "product_id": self.product_id,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "total_price": self.total_price,
            "reservation_id": self.reservation_id,
            "status": self.status,
        }

    def record(self) -> dict[str, Any]:
        """The stored form (money as strings: exact, no binary float on the way)."""
        out = self.public()
        out["unit_price"] = str(self.unit_price)
        out["total_price"] = str(self.total_price)
        out["created_ms"] = self.created_ms
        return out

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Order:
        status = d["status"]
        if status not in TRANSITIONS:
            raise ValueError(f"unknown order status {status!r}")
        return cls(
            order_id=int(d["order_id"]),
            product_id=int(d["product_id"]),
            quantity=int(d["quantity"]),
            unit_price=Decimal(d["unit_price"]),
            total_price=Decimal(d["total_price"]),
            reservation_id=str(d["reservation_id"]),
            status=status,
            created_ms=int(d.get("created_ms", 0)),
        )


class InvalidTransition(Exception):
    def __init__(self, frm: str, to: str) -> None:
        super().__init__(f"an order cannot move from {frm} to {to}")


class OrderError(Exception):
    """A failure of the order workflow, in domain terms."""


class OutOfStock(OrderError):
    def __init__(self, product_id: int) -> None:
        super().__init__(f"not enough units of product {product_id}")
        self.product_id = product_id


class UnknownProduct(OrderError):
    def __init__(self, product_id: int) -> None:
        super().__init__(f"no product {product_id}")
        self.product_id = product_id


class UnknownOrder(OrderError):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"no order {order_id}")
        self.order_id = order_id


class HoldExpired(OrderError):
    """The hold ran out (or was released) before the order could be committed."""


class IdempotencyConflict(OrderError):
    """An Idempotency-Key reused with a different request."""


class RequestInProgress(OrderError):
    """An Idempotency-Key whose first request is still running."""


DependencyKind = Literal["unavailable", "overloaded", "deadline"]


class DependencyDown(OrderError):
    """A dependency (a service or the order store) gave no usable answer in time."""

    def __init__(
        self, dependency: str, kind: DependencyKind = "unavailable", retry_after: int | None = None
    ) -> None:
        super().__init__(f"{dependency}: {kind}")
        self.dependency = dependency
        self.kind: DependencyKind = kind
        self.retry_after = retry_after
