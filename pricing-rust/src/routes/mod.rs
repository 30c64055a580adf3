//! Pricing's HTTP handlers, one module per resource, and the edge conversions they share
//! (bounds checks of inputs, JSON bytes out).

pub mod calculate;
pub mod prices;
pub mod stats;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use svc_kit::{ApiError, FieldError};

use crate::book::BookError;

/// The price book knows nothing of HTTP: here, at the edge, its Redis failure becomes the
/// shared 503 (with Retry-After) like every other unreachable dependency.
impl From<BookError> for ApiError {
    fn from(err: BookError) -> Self {
        ApiError::UpstreamUnavailable {
            upstream: "redis",
            retry_after: 1,
            cause: err.to_string(),
        }
    }
}

/// Serializes straight into one buffer and answers it as `application/json`.
pub fn json_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let mut buf = Vec::with_capacity(256);
    serde_json::to_writer(&mut buf, value).map_err(ApiError::internal)?;
    let mut res = buf.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// Checks `value` is within `min..=max`; records a field error otherwise.
pub fn bounded(
    errors: &mut Vec<FieldError>,
    field: impl FnOnce() -> String,
    value: i64,
    min: i64,
    max: i64,
) -> u64 {
    if value < min || value > max {
        errors.push(FieldError::new(
            field(),
            format!("must be between {min} and {max}"),
        ));
        return 0;
    }
    value as u64
}

/// Parses a product id from a path segment: not an integer or out of bounds -> 422, the
/// same rule as a wrong-typed body field (errors.md).
pub fn path_id(raw: &str) -> Result<u64, ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::invalid("id", "must be an integer"))?;
    let mut errors = Vec::new();
    let id = bounded(
        &mut errors,
        || "id".to_owned(),
        id,
        1,
        crate::pricing::MAX_ID as i64,
    );
    if errors.is_empty() {
        Ok(id)
    } else {
        Err(ApiError::Validation(errors))
    }
}
