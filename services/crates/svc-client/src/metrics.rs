// Owns the client's Prometheus series: the per-try latency histogram and the breaker
// state gauge, registered once per registry and shared by every Upstream.
use prometheus::{HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry};

use svc_wire::HTTP_BUCKETS;

/// The client's metric families. Register once per [`Registry`] (a second registration
/// of the same names fails), then pass to every [`crate::Upstream::new`]; cloning is cheap.
#[derive(Clone, Debug)]
pub struct ClientMetrics {
    pub(crate) duration: HistogramVec,
    pub(crate) breaker: IntGaugeVec,
}

impl ClientMetrics {
    /// Creates and registers `http_client_request_duration_seconds` and
    /// `polyshop_circuit_breaker_state` in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_client_request_duration_seconds",
                "Duration of HTTP requests to upstream services, one observation per try.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &[
                "http_request_method",
                "server_address",
                "http_response_status_code",
            ],
        )?;
        let breaker = IntGaugeVec::new(
            Opts::new(
                "polyshop_circuit_breaker_state",
                "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
            ),
            &["upstream"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(breaker.clone()))?;
        Ok(Self { duration, breaker })
    }
}
