//! `svc-wire` owns how polyshop's Rust services read the shared headers and env values of
//! services/contracts/env.md, once for the server side (svc-kit) and the client side
//! (svc-client): `X-Request-Id`, W3C `traceparent`, `X-Request-Deadline-Ms`,
//! `Content-Type`, `Authorization: Bearer`, the `http_request_method` metric label, the
//! HTTP histogram buckets ([`header`], [`trace`]) and the env value rules ([`env`]).
//!
//! Header parsers take raw bytes (a `HeaderValue::as_bytes()`), so a latin-1 or control
//! byte is judged by the same rule as any other, and never panic.
#![warn(missing_docs)]

pub mod env;
pub mod header;
pub mod trace;

pub use header::{
    DEADLINE_MS, MAX_DEADLINE_MS, MalformedHeader, REQUEST_ID, TRACEPARENT, bearer_token,
    is_json_content_type, method_label, new_request_id, parse_deadline_ms, request_id, trim_ows,
    valid_request_id,
};
pub use trace::TraceParent;

/// Buckets of both http histograms (observability.md), in seconds.
pub const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    7.5, 10.0,
];
