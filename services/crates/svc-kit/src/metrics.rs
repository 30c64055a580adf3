//! Prometheus registry of a service (with the process collector) and the HTTP server
//! histogram of observability.md.

use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, Registry, TextEncoder};

/// Buckets of both http histograms, the same in every language (observability.md);
/// defined once in svc-wire, which svc-client's histogram uses too.
pub use svc_wire::HTTP_BUCKETS;

/// A registry with the process collector (`process_resident_memory_bytes`, ...) installed.
pub fn new_registry() -> Result<Registry, prometheus::Error> {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}

/// `http_server_request_duration_seconds{http_request_method, http_route, http_response_status_code}`.
#[derive(Clone)]
pub struct HttpMetrics {
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates and registers the histogram.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Duration of HTTP server requests.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &[
                "http_request_method",
                "http_route",
                "http_response_status_code",
            ],
        )?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { duration })
    }

    /// Records one request; `route` is the matched template or `unmatched`. A method
    /// outside the known list is recorded as `_OTHER` (svc_wire::method_label), so
    /// invented methods cannot create series.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.duration
            .with_label_values(&[svc_wire::method_label(method), route, status.as_str()])
            .observe(elapsed.as_secs_f64());
    }
}

/// The text exposition of everything in `registry`.
pub fn render(registry: &Registry) -> Vec<u8> {
    let mut buf = Vec::with_capacity(16 * 1024);
    if let Err(err) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %err, "metrics encoding failed");
    }
    buf
}
