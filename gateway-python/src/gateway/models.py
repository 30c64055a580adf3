# Pydantic models of the gateway's public API: request bodies it validates and the response
# shapes it documents in OpenAPI (the product read path passes pricing's bytes through).
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from gateway.money import round_money

ProductId = Annotated[int, Field(ge=1, le=1_000_000_000, strict=True)]
Quantity = Annotated[int, Field(ge=1, le=10_000, strict=True)]
Money = Annotated[
    Decimal,
    PlainSerializer(lambda d: float(round_money(d)), return_type=float, when_used="json"),
    Field(json_schema_extra={"type": "number", "format": "double"}),
]
OrderStatus = Literal["pending", "confirmed", "failed"]


class OrderRequest(BaseModel):
    """Body of POST /api/order. Integers must be JSON integers ("2" or 2.0 are refused)."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"product_id": 123, "quantity": 2}]}
    )

    product_id: ProductId
    quantity: Quantity


class Order(BaseModel):
    order_id: int = Field(description="unique across replicas, at most 2^53")
    product_id: int
    quantity: int
    unit_price: Money
    total_price: Money
    reservation_id: str = Field(description="inventory hold, RES-...")
    status: OrderStatus
    processing_time_ms: float


class InventoryView(BaseModel):
    available: int
    warehouse: str
    last_updated: str


class PricingView(BaseModel):
    base_price: float
    final_price: float
    discount_percent: float
    price_tier: Literal["basic", "silver", "gold", "platinum"]


class Product(BaseModel):
    product_id: int
    inventory: InventoryView
    pricing: PricingView
    processing_time_ms: float


class ProductInBatch(BaseModel):
    product_id: int
    inventory: InventoryView
    pricing: PricingView


class ProductBatch(BaseModel):
    products: list[ProductInBatch]
    not_found: list[int]
    processing_time_ms: float


class GatewayStats(BaseModel):
    service: str
    language: str
    uptime: float = Field(description="seconds since start")
    requests_processed: int = Field(
        description="requests served (all but /health, /ready, /metrics)"
    )
    avg_response_time_us: float = Field(description="mean duration of those requests")
    breakers: dict[str, Literal["closed", "half_open", "open"]] = Field(
        description="circuit breaker state per upstream (pricing, inventory or inventory-<i>)"
    )


class Stats(BaseModel):
    api_gateway: GatewayStats
    pricing_service: dict[str, Any] = Field(
        description='live numbers from pricing, or {"status": "unavailable"}'
    )
    inventory_service: dict[str, Any] = Field(
        description='live numbers from inventory, or {"status": "unavailable"}'
    )
    registry: dict[str, Any] = Field(
        description="live instances per service name, as GET /api/registry lists them"
        ' ({"gateway": 1} without a registry), or {"status": "unavailable"}'
    )


class RegistryEntry(BaseModel):
    name: str = Field(description="gateway, pricing or inventory")
    instance_id: str = Field(description="16 random hex characters, new per process")
    url: str = Field(description="the instance's ADVERTISE_URL")
    language: str = Field(description="python, rust or go")
    version: str
    started_at: str = Field(description="RFC 3339 UTC")
    shard: str | None = Field(description="the inventory shard id; null otherwise")


class RegistryList(BaseModel):
    source: Literal["redis", "static"] = Field(
        description="redis: the live registry; static: no registry configured, only this"
        " gateway itself"
    )
    instances: list[RegistryEntry] = Field(description="sorted by name, then instance_id")


class Health(BaseModel):
    status: Literal["ok"]
    service: str
    version: str


class Ready(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] | None = None


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
