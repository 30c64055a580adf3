"""Python reference monolith: one FastAPI app with pricing and inventory in-process.

GET /api/product/{id} and POST /api/order answer what the gateway stack answers (product
123: final 164.35, 5 %, basic; 2 of it: unit 164.35, total 328.70), by the same rules: the
order holds the units, is priced on the stock and demand before its own hold, is stored
pending, then the hold is committed and the order confirmed; any failure after the hold
gives it back. The inventory and pricing routes are mounted too (admin restock included).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Annotated

from fastapi import FastAPI, Header, Path, Query
from pydantic import BaseModel, Field

from references import catalog, inventory, pricing, rules, stock, web

MAX_ORDERS = 200_000  # the gateway's bound on in-memory orders
EPOCH_2025_MS = 1_735_689_600_000

ProductId = Annotated[int, Path(ge=1, le=rules.MAX_ID)]


class OrderRequest(BaseModel):
    product_id: Annotated[int, Field(strict=True, ge=1, le=rules.MAX_ID)]
    quantity: Annotated[int, Field(strict=True, ge=1, le=rules.MAX_QUANTITY)]


class InventoryPart(BaseModel):
    available: int
    warehouse: str
    last_updated: str


class PricingPart(BaseModel):
    base_price: float
    final_price: float
    discount_percent: float
    price_tier: str


class ProductView(BaseModel):
    product_id: int
    inventory: InventoryPart
    pricing: PricingPart
    processing_time_ms: float


class OrderView(BaseModel):
    order_id: int
    product_id: int
    quantity: int
    unit_price: float
    total_price: float
    reservation_id: str
    status: str
    processing_time_ms: float


@dataclass(slots=True)
class Order:
    order_id: int
    product_id: int
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    reservation_id: str
    status: str = "pending"


class Orders:
    """Orders and idempotency keys in memory, oldest dropped past MAX_ORDERS."""

    def __init__(self) -> None:
        self._orders: OrderedDict[int, Order] = OrderedDict()
        self._keys: OrderedDict[str, tuple[OrderRequest, int]] = OrderedDict()
        # At least 16 x the milliseconds since 2025: ids never repeat across restarts.
        self._ids = itertools.count((int(time.time() * 1000) - EPOCH_2025_MS) * 16)

    def next_id(self) -> int:
        return next(self._ids)

    def save(self, order: Order, key: str | None, req: OrderRequest) -> None:
        self._orders[order.order_id] = order
        if key is not None:
            self._keys[key] = (req, order.order_id)
        for bounded in (self._orders, self._keys):
            while len(bounded) > MAX_ORDERS:
                bounded.popitem(last=False)

    def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def replay(self, key: str, req: OrderRequest) -> Order | None:
        """The key's order; idempotency_conflict when it came with another body."""
        known = self._keys.get(key)
        if known is None:
            return None
        if known[0] != req:
            raise web.ApiError("idempotency_conflict", "idempotency key reused with another body")
        return self._orders.get(known[1])


def order_view(order: Order, started: float) -> OrderView:
    fields = asdict(order)
    fields["unit_price"] = float(order.unit_price)
    fields["total_price"] = float(order.total_price)
    return OrderView(**fields, processing_time_ms=(time.perf_counter() - started) * 1000)


def create_app() -> FastAPI:
    products = catalog.load()
    book = {p.id: p.base_price for p in products}
    store = stock.Stock(products)
    orders = Orders()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with inventory.sweeping(store):
            yield

    app = FastAPI(title="polyshop monolith (Python reference)", lifespan=lifespan)
    web.install_errors(app)

    @app.get("/api/product/{product_id}", response_model=ProductView)
    async def get_product(
        product_id: ProductId,
        quantity: Annotated[int, Query(ge=1, le=rules.MAX_QUANTITY)] = 1,
    ) -> ProductView:
        started = time.perf_counter()
        try:
            item = store.get(product_id)
        except stock.StockError as exc:
            raise inventory.as_api_error(exc) from None
        q = rules.quote(book[product_id], item.available, quantity, item.recent_demand)
        return ProductView(
            product_id=product_id,
            inventory=InventoryPart(
                available=item.available,
                warehouse=item.warehouse,
                last_updated=web.rfc3339(item.last_updated),
            ),
            pricing=PricingPart(
                base_price=float(q.base_price),
                final_price=float(q.final_price),
                discount_percent=float(q.discount_percent),
                price_tier=q.price_tier,
            ),
            processing_time_ms=(time.perf_counter() - started) * 1000,
        )

    @app.post("/api/order", status_code=201, response_model=OrderView)
    async def place_order(
        req: OrderRequest,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=128, pattern=r"^[ -~]+$")
        ] = None,
    ) -> OrderView:
        started = time.perf_counter()
        if idempotency_key is not None and (done := orders.replay(idempotency_key, req)):
            return order_view(done, started)
        try:
            hold, _ = store.reserve(req.product_id, req.quantity, key=idempotency_key)
        except stock.StockError as exc:
            raise inventory.as_api_error(exc) from None
        try:
            q = rules.quote(
                book[req.product_id],
                hold.available_before,
                req.quantity,
                hold.recent_demand_before,
            )
            order = Order(
                order_id=orders.next_id(),
                product_id=req.product_id,
                quantity=req.quantity,
                unit_price=q.final_price,
                total_price=q.total(req.quantity),
                reservation_id=hold.reservation_id,
            )
            orders.save(order, idempotency_key, req)
            store.commit(hold.reservation_id)
        except BaseException:
            store.release(hold.reservation_id)
            raise
        order.status = "confirmed"
        return order_view(order, started)

    @app.get("/api/order/{order_id}", response_model=OrderView)
    async def get_order(order_id: Annotated[int, Path(ge=1, le=2**53)]) -> OrderView:
        order = orders.get(order_id)
        if order is None:
            raise web.ApiError("order_not_found", f"order {order_id} does not exist")
        return order_view(order, time.perf_counter())

    web.install_health(app, "monolith-reference")
    app.include_router(inventory.router(store))
    app.include_router(pricing.router(book))
    return app
