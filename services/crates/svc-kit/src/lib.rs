//! svc-kit owns what every polyshop Rust service does the same way: environment config with
//! bounds and prod checks ([`config`]), JSON-lines logs ([`telemetry`]), the Prometheus
//! registry and HTTP histogram ([`metrics`]), the request context middleware (request id,
//! traceparent, deadline, body limit, fault injection, access log: [`context`]), the shared
//! error JSON ([`error`]) and extractors that speak it ([`extract`]), `/health` `/ready`
//! `/metrics` ([`health`]), the service registry heartbeat ([`registry`]) and serving with
//! graceful shutdown ([`serve`]).
//!
//! A service builds its API `Router`, hands it to [`router`] with a [`Kit`], and serves it.
#![warn(missing_docs)]

pub mod config;
pub mod context;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod registry;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use config::{CommonConfig, ConfigError, or_exit};
pub use context::RequestContext;
pub use error::{ApiError, ErrorCode, FieldError};
pub use extract::{AdminGuard, AdminToken, Json};
pub use health::Readiness;

/// What the shared middleware and routes need: the service's name, version, registry,
/// HTTP metrics and the request-level knobs of the common config.
pub struct Kit {
    /// Service name in logs and `/health` (`pricing`).
    pub service: &'static str,
    /// Version in `/health`.
    pub version: &'static str,
    /// The service's registry; `/metrics` renders it.
    pub registry: prometheus::Registry,
    /// `http_server_request_duration_seconds`.
    pub http: metrics::HttpMetrics,
    /// `MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `FAULT_DELAY_MS`.
    pub fault_delay_ms: u64,
    /// `FAULT_ERROR_RATE`.
    pub fault_error_rate: f64,
}

impl Kit {
    /// A kit with a fresh registry (process collector + HTTP histogram).
    pub fn new(
        service: &'static str,
        version: &'static str,
        cfg: &CommonConfig,
    ) -> Result<Arc<Self>, prometheus::Error> {
        let registry = metrics::new_registry()?;
        let http = metrics::HttpMetrics::register(&registry)?;
        Ok(Arc::new(Self {
            service,
            version,
            registry,
            http,
            max_body_bytes: cfg.max_body_bytes,
            fault_delay_ms: cfg.fault_delay_ms,
            fault_error_rate: cfg.fault_error_rate,
        }))
    }
}

/// Completes a service router: adds `/health` `/ready` `/metrics`, the 404 and 405 fallbacks
/// in the shared error shape, the body limit and the request middleware.
pub fn router(api: Router, kit: Arc<Kit>, readiness: Readiness) -> Router {
    api.merge(health::routes(kit.clone(), readiness))
        .fallback(|| async { ApiError::NotFound })
        // Must come after every route: axum applies it to the routes present (its own 405
        // has an empty body).
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Bounds chunked bodies too; Content-Length is checked before reading in `context`.
        .layer(DefaultBodyLimit::max(kit.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            kit,
            context::middleware,
        ))
}

/// Waits for SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown");
}

/// Binds `0.0.0.0:port` and serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    router: Router,
    port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_listener(bind(port).await?, router, shutdown).await
}

/// Binds `0.0.0.0:port` (a service that registers binds first, so the URL it advertises
/// answers).
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("0.0.0.0", port)).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(address = %addr, port = addr.port(), "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("stopped");
    Ok(())
}
