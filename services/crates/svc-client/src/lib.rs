//! `svc-client` owns how polyshop's Rust services call other services over HTTP: one
//! pooled `reqwest` client per upstream with a per-try timeout capped by the request's
//! deadline, jittered exponential retries for idempotent calls (never on an inner hop),
//! a circuit breaker, `X-Request-Id` / W3C `traceparent` / `X-Request-Deadline-Ms`
//! propagation, the `http_client_request_duration_seconds` and
//! `polyshop_circuit_breaker_state` metrics, and [`ShardRing`], the consistent hash that
//! picks an inventory shard.
//!
//! Answers below 500 (4xx included) come back as `Ok(`[`UpstreamResponse`]`)` so callers
//! can read a 404 or 409 body; connect errors, timeouts and 5xx become
//! [`ClientError::Unavailable`] after the allowed retries.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use svc_client::{CallContext, ClientMetrics, Upstream, UpstreamConfig};
//! let registry = prometheus::Registry::new();
//! let metrics = ClientMetrics::register(&registry)?;
//! let config = UpstreamConfig::from_env(|k| std::env::var(k).ok())?;
//! let inventory = Upstream::new("inventory", "http://127.0.0.1:8002", &config, &metrics)?;
//! let ctx = CallContext { inner_hop: true, ..CallContext::new("req-1") };
//! let answer = inventory.get("/api/inventory/123", &ctx).await?;
//! if answer.status.is_success() {
//!     let item: serde_json::Value = answer.json()?;
//!     println!("{item}");
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod breaker;
mod config;
mod context;
mod error;
mod metrics;
mod ring;
mod upstream;

pub use breaker::BreakerState;
pub use config::{ConfigError, ENV_VARS, EnvVar, UpstreamConfig};
pub use context::CallContext;
pub use error::{ClientError, FailureCause};
pub use http::StatusCode;
pub use metrics::ClientMetrics;
pub use ring::ShardRing;
/// The header parsers and buckets shared with svc-kit (one reading of the wire).
pub use svc_wire::{HTTP_BUCKETS, TraceParent};
pub use upstream::{BuildError, Upstream, UpstreamResponse};
