//! `GET /api/stats`: live counters of this pricing process.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use svc_kit::ApiError;

use crate::AppState;

#[derive(Serialize)]
struct StatsView {
    service: &'static str,
    language: &'static str,
    requests_processed: u64,
    avg_calculation_time_us: f64,
}

/// The service's live numbers.
pub async fn stats_get(State(state): State<AppState>) -> Result<Response, ApiError> {
    super::json_response(&StatsView {
        service: "pricing-service",
        language: "Rust",
        requests_processed: state.stats.requests_processed(),
        avg_calculation_time_us: state.stats.avg_calculation_time_us(),
    })
}
