//! `GET /api/prices/{id}`, `GET /api/prices?ids=` (the gateway's hot read path: stock from
//! inventory, priced here, answered as the gateway's product object) and the admin
//! `PUT /api/prices/{id}`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use svc_kit::{AdminGuard, ApiError, FieldError, Json, RequestContext};

use super::{bounded, json_response, path_id};
use crate::AppState;
use crate::inventory::InventoryItem;
use crate::pricing::{MAX_ID, MAX_QUANTITY, PriceInput, base_price_from_f64, to_f64};

/// Most ids in one batch read.
pub const MAX_IDS: usize = 100;

#[derive(Serialize)]
struct ProductView<'a> {
    product_id: u64,
    inventory: InventoryView<'a>,
    pricing: PricingView,
}

#[derive(Serialize)]
struct InventoryView<'a> {
    available: u64,
    warehouse: &'a str,
    last_updated: &'a str,
}

#[derive(Serialize)]
struct PricingView {
    base_price: f64,
    final_price: f64,
    discount_percent: f64,
    price_tier: &'static str,
}

#[derive(Serialize)]
struct ListView<'a> {
    products: Vec<ProductView<'a>>,
    not_found: Vec<u64>,
}

fn quantity_param(params: &[(String, String)]) -> Result<u32, ApiError> {
    let Some((_, raw)) = params.iter().find(|(k, _)| k == "quantity") else {
        return Ok(1);
    };
    let q: i64 = raw
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("quantity", "must be an integer"))?;
    let mut errors = Vec::new();
    let q = bounded(
        &mut errors,
        || "quantity".to_owned(),
        q,
        1,
        i64::from(MAX_QUANTITY),
    );
    if errors.is_empty() {
        Ok(q as u32)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn query_params(
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|_| ApiError::Malformed("the query string cannot be parsed".to_owned()))
}

async fn view<'a>(
    state: &AppState,
    item: &'a InventoryItem,
    quantity: u32,
) -> Result<Option<ProductView<'a>>, ApiError> {
    let Some(base_price) = state.book.get(item.product_id).await? else {
        return Ok(None);
    };
    let q = state.stats.quote(&PriceInput {
        base_price,
        quantity_available: item.available,
        quantity,
        recent_demand: item.recent_demand,
    });
    Ok(Some(ProductView {
        product_id: item.product_id,
        inventory: InventoryView {
            available: item.available,
            warehouse: &item.warehouse,
            last_updated: &item.last_updated,
        },
        pricing: PricingView {
            base_price: to_f64(q.base_price),
            final_price: to_f64(q.final_price),
            discount_percent: to_f64(q.discount_percent()),
            price_tier: q.tier.as_str(),
        },
    }))
}

/// One product, priced on its live stock.
pub async fn prices_get(
    State(state): State<AppState>,
    ctx: RequestContext,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    state.stats.count_request();
    let Path(raw) = id.map_err(|_| ApiError::Malformed("the path cannot be parsed".to_owned()))?;
    let id = path_id(&raw)?;
    let quantity = quantity_param(&query_params(query)?)?;
    let item = state
        .inventory
        .item(id, &ctx)
        .await?
        .ok_or(ApiError::ProductNotFound(id))?;
    let product = view(&state, &item, quantity)
        .await?
        .ok_or(ApiError::ProductNotFound(id))?;
    json_response(&product)
}

/// Several products in one inventory call; unknown ids are listed in `not_found`.
pub async fn prices_list(
    State(state): State<AppState>,
    ctx: RequestContext,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    state.stats.count_request();
    let params = query_params(query)?;
    let quantity = quantity_param(&params)?;
    let raw = params
        .iter()
        .find(|(k, _)| k == "ids")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::invalid("ids", "is required (ids=1,2,3)"))?;
    let mut ids: Vec<u64> = Vec::new();
    let mut errors: Vec<FieldError> = Vec::new();
    for part in raw.split(',').map(str::trim) {
        match part.parse::<i64>() {
            Ok(n) if (1..=MAX_ID as i64).contains(&n) => {
                if !ids.contains(&(n as u64)) {
                    ids.push(n as u64);
                }
            }
            _ => errors.push(FieldError::new(
                "ids",
                format!("{part:?} is not a product id (1..{MAX_ID})"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::invalid(
            "ids",
            format!("must hold 1 to {MAX_IDS} ids"),
        ));
    }
    let (items, mut not_found) = state.inventory.batch(&ids, &ctx).await?;
    let mut products = Vec::with_capacity(items.len());
    for item in &items {
        match view(&state, item, quantity).await? {
            Some(p) => products.push(p),
            None => not_found.push(item.product_id),
        }
    }
    // Answer in the order asked.
    products.sort_by_key(|p| {
        ids.iter()
            .position(|&i| i == p.product_id)
            .unwrap_or(usize::MAX)
    });
    not_found.sort_by_key(|n| ids.iter().position(|i| i == n).unwrap_or(usize::MAX));
    json_response(&ListView {
        products,
        not_found,
    })
}

/// `{"base_price": 50.0}`.
#[derive(Debug, Deserialize)]
pub struct SetPrice {
    base_price: f64,
}

#[derive(Serialize)]
struct SetPriceAnswer {
    product_id: u64,
    base_price: f64,
}

/// Admin: changes a product's base price (Redis when configured, else this process).
pub async fn prices_put(
    _admin: AdminGuard,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    Json(body): Json<SetPrice>,
) -> Result<Response, ApiError> {
    let Path(raw) = id.map_err(|_| ApiError::Malformed("the path cannot be parsed".to_owned()))?;
    let id = path_id(&raw)?;
    let price = base_price_from_f64(body.base_price)
        .ok_or_else(|| ApiError::invalid("base_price", "must be between 0.01 and 1000000"))?;
    if !state.book.set(id, price).await? {
        return Err(ApiError::ProductNotFound(id));
    }
    tracing::info!(product_id = id, base_price = %price, "price changed");
    json_response(&SetPriceAnswer {
        product_id: id,
        base_price: to_f64(price),
    })
}
