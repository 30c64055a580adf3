//! `POST /api/calculate_price` and `POST /api/calculate_prices`: price lines the caller
//! describes (stock given), filling base price from the book and demand from the projection.

use axum::extract::State;
use axum::response::Response;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use svc_kit::{ApiError, FieldError, Json};

use super::{bounded, json_response};
use crate::AppState;
use crate::pricing::{
    self, MAX_ID, MAX_QUANTITY, MAX_UNITS, PriceInput, Quote, base_price_from_f64, to_f64,
};

/// Most lines in one `calculate_prices` call.
pub const MAX_BATCH: usize = 1000;

/// One line to price, as sent (numbers wide, so bounds give field errors, not type errors).
#[derive(Debug, Deserialize)]
pub struct PriceRequest {
    product_id: i64,
    quantity_available: i64,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    recent_demand: Option<i64>,
    #[serde(default)]
    base_price: Option<f64>,
}

/// `{"items": [...]}`.
#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    items: Vec<PriceRequest>,
}

/// A line that passed the bounds of errors.md.
#[derive(Debug, Clone, Copy)]
struct Line {
    product_id: u64,
    quantity_available: u64,
    quantity: u32,
    recent_demand: Option<u64>,
    base_price: Option<Decimal>,
}

impl PriceRequest {
    fn validate(&self, prefix: &str, errors: &mut Vec<FieldError>) -> Line {
        let f = |name: &str| format!("{prefix}{name}");
        let product_id = bounded(
            errors,
            || f("product_id"),
            self.product_id,
            1,
            MAX_ID as i64,
        );
        let quantity_available = bounded(
            errors,
            || f("quantity_available"),
            self.quantity_available,
            0,
            MAX_UNITS as i64,
        );
        let quantity = bounded(
            errors,
            || f("quantity"),
            self.quantity.unwrap_or(1),
            1,
            i64::from(MAX_QUANTITY),
        ) as u32;
        let recent_demand = self
            .recent_demand
            .map(|d| bounded(errors, || f("recent_demand"), d, 0, MAX_UNITS as i64));
        let base_price = self.base_price.and_then(|p| {
            let d = base_price_from_f64(p);
            if d.is_none() {
                errors.push(FieldError::new(
                    f("base_price"),
                    "must be between 0.01 and 1000000",
                ));
            }
            d
        });
        Line {
            product_id,
            quantity_available,
            quantity,
            recent_demand,
            base_price,
        }
    }
}

/// The priced line clients get; money as JSON numbers rounded to cents.
#[derive(Debug, Serialize)]
pub struct PriceAnswer {
    product_id: u64,
    base_price: f64,
    final_price: f64,
    discount_percent: f64,
    price_tier: &'static str,
    scarcity_factor: f64,
    demand_factor: f64,
    currency: &'static str,
}

impl PriceAnswer {
    fn new(product_id: u64, q: &Quote) -> Self {
        Self {
            product_id,
            base_price: to_f64(q.base_price),
            final_price: to_f64(q.final_price),
            discount_percent: to_f64(q.discount_percent()),
            price_tier: q.tier.as_str(),
            scarcity_factor: to_f64(q.scarcity_factor),
            demand_factor: to_f64(q.demand_factor),
            currency: "USD",
        }
    }
}

#[derive(Serialize)]
struct BatchAnswer {
    results: Vec<PriceAnswer>,
}

fn redis_unavailable(e: redis::RedisError) -> ApiError {
    ApiError::UpstreamUnavailable {
        upstream: "redis",
        retry_after: 1,
        cause: e.to_string(),
    }
}

async fn price_line(state: &AppState, line: Line) -> Result<PriceAnswer, ApiError> {
    let base_price = match line.base_price {
        Some(p) => p,
        None => state
            .book
            .get(line.product_id)
            .await?
            .ok_or(ApiError::ProductNotFound(line.product_id))?,
    };
    let recent_demand = match line.recent_demand {
        Some(d) => d,
        None => state
            .demand
            .recent(line.product_id)
            .await
            .map_err(redis_unavailable)?,
    };
    let quote = state.stats.quote(&PriceInput {
        base_price,
        quantity_available: line.quantity_available,
        quantity: line.quantity,
        recent_demand,
    });
    Ok(PriceAnswer::new(line.product_id, &quote))
}

/// Prices one line.
pub async fn calculate_price(
    State(state): State<AppState>,
    Json(req): Json<PriceRequest>,
) -> Result<Response, ApiError> {
    state.stats.count_request();
    let mut errors = Vec::new();
    let line = req.validate("", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    json_response(&price_line(&state, line).await?)
}

/// Prices 1..1000 lines; any invalid line fails the whole call with every field named.
pub async fn calculate_prices(
    State(state): State<AppState>,
    Json(req): Json<BatchRequest>,
) -> Result<Response, ApiError> {
    state.stats.count_request();
    if req.items.is_empty() || req.items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "items",
            format!("must hold 1 to {MAX_BATCH} items"),
        ));
    }
    let mut errors = Vec::new();
    let lines: Vec<Line> = req
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| item.validate(&format!("items[{i}]."), &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Demand of every line that omits it, in one Redis round trip (not one per line).
    let mut wanted: Vec<u64> = lines
        .iter()
        .filter(|l| l.recent_demand.is_none())
        .map(|l| l.product_id)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let demand = state
        .demand
        .recent_many(&wanted)
        .await
        .map_err(redis_unavailable)?;
    let mut results = Vec::with_capacity(lines.len());
    for mut line in lines {
        if line.recent_demand.is_none() {
            let at = wanted.binary_search(&line.product_id).ok();
            line.recent_demand = Some(at.and_then(|i| demand.get(i).copied()).unwrap_or(0));
        }
        results.push(price_line(&state, line).await?);
    }
    json_response(&BatchAnswer { results })
}

/// Exposed for the benchmark: the rules plus the edge conversion, no HTTP.
pub fn answer_for(product_id: u64, input: &PriceInput) -> impl Serialize + use<> {
    PriceAnswer::new(product_id, &pricing::quote(input))
}
