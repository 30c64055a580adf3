"""Python reference of the pricing service: POST /api/calculate_price and
/api/calculate_prices with the request and answer shapes of pricing.openapi.yaml."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from references import catalog, rules, web

ProductId = Annotated[int, Field(strict=True, ge=1, le=rules.MAX_ID)]
Units = Annotated[int, Field(strict=True, ge=0, le=rules.MAX_UNITS)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=rules.MAX_QUANTITY)]
Price = Annotated[float, Field(ge=rules.MIN_PRICE, le=rules.MAX_PRICE)]


class PriceRequest(BaseModel):
    product_id: ProductId
    quantity_available: Units
    quantity: Quantity = 1
    recent_demand: Units | None = None
    base_price: Price | None = None


class BatchRequest(BaseModel):
    items: Annotated[list[PriceRequest], Field(min_length=1, max_length=1000)]


class PriceAnswer(BaseModel):
    product_id: int
    base_price: float
    final_price: float
    discount_percent: float
    price_tier: str
    scarcity_factor: float
    demand_factor: float
    currency: str = "USD"


class BatchAnswer(BaseModel):
    results: list[PriceAnswer]


def answer(product_id: int, q: rules.Quote) -> PriceAnswer:
    return PriceAnswer(
        product_id=product_id,
        base_price=float(q.base_price),
        final_price=float(q.final_price),
        discount_percent=float(q.discount_percent),
        price_tier=q.price_tier,
        scarcity_factor=float(q.scarcity_factor),
        demand_factor=float(q.demand_factor),
    )


def router(book: dict[int, Decimal]) -> APIRouter:
    """The pricing routes over a price book (product id -> base price)."""
    api = APIRouter()

    def price(req: PriceRequest) -> PriceAnswer:
        if req.base_price is not None:
            base = rules.money(req.base_price)
        elif (known := book.get(req.product_id)) is not None:
            base = known
        else:
            raise web.ApiError("product_not_found", f"product {req.product_id} does not exist")
        # Without a demand figure the service uses its own projection: 0 in memory mode.
        q = rules.quote(base, req.quantity_available, req.quantity, req.recent_demand or 0)
        return answer(req.product_id, q)

    @api.post("/api/calculate_price", response_model=PriceAnswer)
    async def calculate_price(req: PriceRequest) -> PriceAnswer:
        return price(req)

    @api.post("/api/calculate_prices", response_model=BatchAnswer)
    async def calculate_prices(req: BatchRequest) -> BatchAnswer:
        return BatchAnswer(results=[price(item) for item in req.items])

    return api


def create_app() -> FastAPI:
    book = {p.id: p.base_price for p in catalog.load()}
    app = FastAPI(title="polyshop pricing (Python reference)")
    web.install_errors(app)
    web.install_health(app, "pricing-reference")
    app.include_router(router(book))
    return app
