//! The shared error type: every failure a service answers becomes one `ApiError`, and one
//! `IntoResponse` turns it into the error JSON of services/contracts/errors.md.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::context;

/// The closed list of error codes (services/contracts/errors.md), each with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: body is not JSON, or the path/query cannot be parsed.
    MalformedRequest,
    /// 401: admin route without a bearer token.
    Unauthorized,
    /// 403: admin route with a wrong token.
    Forbidden,
    /// 404: no such route.
    NotFound,
    /// 404: unknown product id.
    ProductNotFound,
    /// 404: unknown order id.
    OrderNotFound,
    /// 404: unknown reservation id.
    ReservationNotFound,
    /// 405: route exists, method does not.
    MethodNotAllowed,
    /// 409: fewer units available than requested.
    InsufficientStock,
    /// 409: idempotency key reused with another body.
    IdempotencyConflict,
    /// 409: idempotency key whose first request still runs.
    RequestInProgress,
    /// 409: commit of an expired hold.
    ReservationExpired,
    /// 409: commit of a released hold.
    ReservationReleased,
    /// 409: release of a committed hold (its units stay sold).
    ReservationCommitted,
    /// 413: body above `MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// 421: an inventory shard asked for a product it does not hold.
    MisdirectedRequest,
    /// 415: JSON body with another content type.
    UnsupportedMediaType,
    /// 422: well-formed JSON with bad values.
    ValidationFailed,
    /// 429: client above the rate limit.
    RateLimited,
    /// 500: a bug.
    InternalError,
    /// 500: `FAULT_ERROR_RATE` fired.
    FaultInjected,
    /// 503: a dependency is down.
    UpstreamUnavailable,
    /// 503: bulkhead full.
    Overloaded,
    /// 503: a write to a product a rebalance is moving.
    ProductMoving,
    /// 503: the request's deadline ran out.
    DeadlineExceeded,
}

impl ErrorCode {
    /// Every code, in the order of errors.md (tests compare this with the contract).
    pub const ALL: [ErrorCode; 25] = [
        Self::MalformedRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::ProductNotFound,
        Self::OrderNotFound,
        Self::ReservationNotFound,
        Self::MethodNotAllowed,
        Self::InsufficientStock,
        Self::IdempotencyConflict,
        Self::RequestInProgress,
        Self::ReservationExpired,
        Self::ReservationReleased,
        Self::ReservationCommitted,
        Self::PayloadTooLarge,
        Self::MisdirectedRequest,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::RateLimited,
        Self::InternalError,
        Self::FaultInjected,
        Self::UpstreamUnavailable,
        Self::Overloaded,
        Self::ProductMoving,
        Self::DeadlineExceeded,
    ];

    /// The snake_case code clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::ProductNotFound => "product_not_found",
            Self::OrderNotFound => "order_not_found",
            Self::ReservationNotFound => "reservation_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InsufficientStock => "insufficient_stock",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::RequestInProgress => "request_in_progress",
            Self::ReservationExpired => "reservation_expired",
            Self::ReservationReleased => "reservation_released",
            Self::ReservationCommitted => "reservation_committed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MisdirectedRequest => "misdirected_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::RateLimited => "rate_limited",
            Self::InternalError => "internal_error",
            Self::FaultInjected => "fault_injected",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::Overloaded => "overloaded",
            Self::ProductMoving => "product_moving",
            Self::DeadlineExceeded => "deadline_exceeded",
        }
    }

    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound
            | Self::ProductNotFound
            | Self::OrderNotFound
            | Self::ReservationNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InsufficientStock
            | Self::IdempotencyConflict
            | Self::RequestInProgress
            | Self::ReservationExpired
            | Self::ReservationReleased
            | Self::ReservationCommitted => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError | Self::FaultInjected => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UpstreamUnavailable
            | Self::Overloaded
            | Self::ProductMoving
            | Self::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One invalid input field of a 400/422 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path of the field, e.g. `quantity` or `items[3].quantity`.
    pub field: String,
    /// What is wrong, written for a client.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error a handler, extractor or middleware can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or the path/query cannot be parsed.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 422: values out of bounds, missing or of the wrong type.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// 401: admin route without `Authorization: Bearer`.
    #[error("missing bearer token")]
    Unauthorized,
    /// 403: admin route with a wrong token.
    #[error("wrong bearer token")]
    Forbidden,
    /// 404: no such route.
    #[error("no such route")]
    NotFound,
    /// 404: unknown product.
    #[error("product {0} not found")]
    ProductNotFound(u64),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: body above `MAX_BODY_BYTES`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: not a JSON content type.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Any other 4xx code of the closed list, with a client-facing message.
    #[error("{code:?}: {message}")]
    Client {
        /// The code.
        code: ErrorCode,
        /// Message for the client.
        message: String,
    },
    /// 500: a bug; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// 500: `FAULT_ERROR_RATE` fired.
    #[error("fault injected")]
    FaultInjected,
    /// 503: a dependency is down, erroring, timing out or behind an open breaker.
    #[error("{upstream} unavailable: {cause}")]
    UpstreamUnavailable {
        /// Name of the dependency (`inventory`, `redis`).
        upstream: &'static str,
        /// Seconds the client should wait (>= 1).
        retry_after: u64,
        /// Internal cause, logged only.
        cause: String,
    },
    /// 503: the request's deadline ran out.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// 503: bulkhead full.
    #[error("overloaded")]
    Overloaded {
        /// Seconds the client should wait (>= 1).
        retry_after: u64,
    },
    /// 429: rate limited.
    #[error("rate limited")]
    RateLimited {
        /// Seconds the client should wait (>= 1).
        retry_after: u64,
    },
}

impl ApiError {
    /// A 422 with a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A 500 whose cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) => ErrorCode::MalformedRequest,
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotFound => ErrorCode::NotFound,
            Self::ProductNotFound(_) => ErrorCode::ProductNotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::Client { code, .. } => *code,
            Self::Internal(_) => ErrorCode::InternalError,
            Self::FaultInjected => ErrorCode::FaultInjected,
            Self::UpstreamUnavailable { .. } => ErrorCode::UpstreamUnavailable,
            Self::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            Self::Overloaded { .. } => ErrorCode::Overloaded,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
        }
    }

    fn client_message(&self) -> String {
        match self {
            Self::Malformed(m) => m.clone(),
            Self::Validation(_) => "the request has invalid fields".to_owned(),
            Self::Unauthorized => "this route needs Authorization: Bearer <token>".to_owned(),
            Self::Forbidden => "wrong admin token".to_owned(),
            Self::NotFound => "no such route".to_owned(),
            Self::ProductNotFound(id) => format!("product {id} not found"),
            Self::MethodNotAllowed => "method not allowed on this route".to_owned(),
            Self::PayloadTooLarge => "request body too large".to_owned(),
            Self::UnsupportedMediaType => {
                "send the body as Content-Type: application/json".to_owned()
            }
            Self::Client { message, .. } => message.clone(),
            Self::Internal(_) => "internal error".to_owned(),
            Self::FaultInjected => "fault injected".to_owned(),
            Self::UpstreamUnavailable { upstream, .. } => format!("{upstream} service unavailable"),
            Self::DeadlineExceeded => "request deadline exceeded".to_owned(),
            Self::Overloaded { .. } => "service overloaded".to_owned(),
            Self::RateLimited { .. } => "too many requests".to_owned(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::UpstreamUnavailable { retry_after, .. }
            | Self::Overloaded { retry_after }
            | Self::RateLimited { retry_after } => Some((*retry_after).max(1)),
            Self::DeadlineExceeded => Some(1),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'static str,
    message: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [FieldError]>,
}

/// Renders the shared error JSON for `code` (also used by middleware that has no `ApiError`).
pub fn error_body(code: ErrorCode, message: &str, details: Option<&[FieldError]>) -> Vec<u8> {
    let request_id = context::current_request_id();
    let body = Body {
        error: Inner {
            code: code.as_str(),
            message,
            request_id: request_id.as_deref().unwrap_or(""),
            details,
        },
    };
    // Serializing plain strings into a Vec cannot fail; fall back to a fixed body anyway.
    serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"error":{"code":"internal_error","message":"internal error","request_id":""}}"#
            .to_vec()
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.status();
        if status.is_server_error() {
            // The cause stays in the log (inside the request span, so it carries request_id).
            tracing::error!(code = code.as_str(), cause = %self, "request failed");
        }
        let details = match &self {
            Self::Validation(d) => Some(d.as_slice()),
            _ => None,
        };
        let body = error_body(code, &self.client_message(), details);
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
