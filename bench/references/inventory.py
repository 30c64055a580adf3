"""Python reference of the inventory service: stock reads, admin restock and holds
(reserve, commit, release, expiry) with the shapes and answers of inventory.openapi.yaml."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from references import catalog, rules, stock, web

ProductId = Annotated[int, Path(ge=1, le=rules.MAX_ID)]
ReservationId = Annotated[str, Path(pattern=r"^RES-[0-9a-f]{24}$")]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[ -~]+$")]
SWEEP_EVERY_S = 1.0


class Strict(BaseModel):
    # Unknown fields are refused, so a misspelt field never passes silently.
    model_config = ConfigDict(extra="forbid", strict=True)


class RestockRequest(Strict):
    available: Annotated[int, Field(ge=0, le=rules.MAX_UNITS)]


class BatchRequest(Strict):
    ids: Annotated[
        list[Annotated[int, Field(ge=1, le=rules.MAX_ID)]], Field(min_length=1, max_length=100)
    ]


class ReserveRequest(Strict):
    product_id: Annotated[int, Field(ge=1, le=rules.MAX_ID)]
    quantity: Annotated[int, Field(ge=1, le=rules.MAX_QUANTITY)]
    idempotency_key: IdempotencyKey | None = None
    ttl_seconds: Annotated[int, Field(ge=1, le=86_400)] = stock.DEFAULT_TTL_S


class ItemView(BaseModel):
    product_id: int
    available: int
    reserved: int
    warehouse: str
    last_updated: str
    recent_demand: int


class BatchView(BaseModel):
    items: list[ItemView]
    not_found: list[int]


class HoldView(BaseModel):
    reservation_id: str
    product_id: int
    quantity: int
    state: str
    expires_at: str


class ReservationView(HoldView):
    available_before: int
    recent_demand_before: int


class SettlementView(HoldView):
    repeated: bool


def item_view(item: stock.Item) -> ItemView:
    return ItemView(
        product_id=item.product_id,
        available=item.available,
        reserved=item.reserved,
        warehouse=item.warehouse,
        last_updated=web.rfc3339(item.last_updated),
        recent_demand=item.recent_demand,
    )


def hold_view(hold: stock.Hold) -> HoldView:
    return HoldView(
        reservation_id=hold.reservation_id,
        product_id=hold.product_id,
        quantity=hold.quantity,
        state=hold.state,
        expires_at=web.rfc3339(hold.expires_at),
    )


def reservation_view(hold: stock.Hold) -> ReservationView:
    return ReservationView(
        **hold_view(hold).model_dump(),
        available_before=hold.available_before,
        recent_demand_before=hold.recent_demand_before,
    )


def settlement_view(hold: stock.Hold, repeated: bool) -> SettlementView:
    return SettlementView(**hold_view(hold).model_dump(), repeated=repeated)


def as_api_error(exc: stock.StockError) -> web.ApiError:
    return web.ApiError(exc.code, str(exc))


def router(store: stock.Stock) -> APIRouter:
    """The inventory routes over one store."""
    api = APIRouter()

    @api.get("/api/inventory/{product_id}", response_model=ItemView)
    async def get_item(product_id: ProductId) -> ItemView:
        try:
            return item_view(store.get(product_id))
        except stock.StockError as exc:
            raise as_api_error(exc) from None

    @api.put("/api/inventory/{product_id}", response_model=ItemView)
    async def restock(product_id: ProductId, body: RestockRequest, request: Request) -> ItemView:
        web.check_admin(request)
        try:
            return item_view(store.restock(product_id, body.available))
        except stock.StockError as exc:
            raise as_api_error(exc) from None

    @api.post("/api/inventory/batch", response_model=BatchView)
    async def get_batch(body: BatchRequest) -> BatchView:
        found, missing = store.get_many(body.ids)
        return BatchView(items=[item_view(i) for i in found], not_found=missing)

    @api.post("/api/reservations", status_code=201, response_model=ReservationView)
    async def reserve(body: ReserveRequest, response: Response) -> ReservationView:
        try:
            hold, replay = store.reserve(
                body.product_id, body.quantity, body.ttl_seconds, body.idempotency_key
            )
        except stock.StockError as exc:
            raise as_api_error(exc) from None
        if replay:
            response.status_code = 200
        return reservation_view(hold)

    @api.get("/api/reservations/{reservation_id}", response_model=HoldView)
    async def get_reservation(reservation_id: ReservationId) -> HoldView:
        try:
            return hold_view(store.lookup(reservation_id))
        except stock.StockError as exc:
            raise as_api_error(exc) from None

    @api.post("/api/reservations/{reservation_id}/commit", response_model=SettlementView)
    async def commit(reservation_id: ReservationId) -> SettlementView:
        try:
            hold, repeated = store.commit(reservation_id)
        except stock.StockError as exc:
            raise as_api_error(exc) from None
        return settlement_view(hold, repeated)

    @api.delete("/api/reservations/{reservation_id}", response_model=SettlementView)
    async def release(reservation_id: ReservationId) -> SettlementView:
        try:
            hold, repeated = store.release(reservation_id)
        except stock.StockError as exc:
            raise as_api_error(exc) from None
        return settlement_view(hold, repeated)

    return api


@contextlib.asynccontextmanager
async def sweeping(store: stock.Stock) -> AsyncIterator[None]:
    """Expires holds in the background while the app runs (reads expire them too)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            store.sweep()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()


def create_app() -> FastAPI:
    store = stock.Stock(catalog.load())

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with sweeping(store):
            yield

    app = FastAPI(title="polyshop inventory (Python reference)", lifespan=lifespan)
    web.install_errors(app)
    web.install_health(app, "inventory-reference")
    app.include_router(router(store))
    return app
