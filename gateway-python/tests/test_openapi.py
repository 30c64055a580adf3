# services/contracts/gateway.openapi.yaml is exactly what the app serves at /openapi.json,
# and it documents every public route, the lean product route included.
from __future__ import annotations

from pathlib import Path

import yaml

from conftest import Gateway

CONTRACT = Path(__file__).resolve().parents[2] / "services/contracts/gateway.openapi.yaml"


async def test_contract_equals_served_document(gw: Gateway) -> None:
    served = (await gw.client.get("/openapi.json")).json()
    assert yaml.safe_load(CONTRACT.read_text()) == served, (
        "regenerate with: .venv/bin/python gateway-python/scripts/export_openapi.py"
    )


async def test_every_public_route_is_documented(gw: Gateway) -> None:
    doc = (await gw.client.get("/openapi.json")).json()
    assert set(doc["paths"]) >= {
        "/api/product/{id}",
        "/api/products",
        "/api/order",
        "/api/order/{order_id}",
        "/api/stats",
        "/health",
        "/ready",
        "/metrics",
    }
    product = doc["paths"]["/api/product/{id}"]["get"]
    assert product["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Product"
    )
    assert "Product" in doc["components"]["schemas"]
    order_body = doc["paths"]["/api/order"]["post"]["requestBody"]["content"]["application/json"]
    assert order_body["schema"]["$ref"].endswith("/OrderRequest")
    assert "OrderRequest" in doc["components"]["schemas"]
    assert (await gw.client.get("/docs")).status_code == 200
