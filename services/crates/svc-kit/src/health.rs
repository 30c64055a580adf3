//! `/health` (liveness, touches nothing), `/ready` (the service's own store, 1 s timeout per
//! check) and `/metrics` (Prometheus text).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::Kit;

/// The future of one readiness check: `Err` carries the cause (logged, never sent).
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The readiness checks of a service (none in memory mode: always ready).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    /// No checks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named async check, run with a 1 s timeout on every `/ready`.
    pub fn check<F, Fut>(mut self, name: &'static str, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(f()))));
        self
    }

    async fn run(&self) -> Vec<(&'static str, Result<(), String>)> {
        let mut out = Vec::with_capacity(self.checks.len());
        for (name, check) in &self.checks {
            let result = match tokio::time::timeout(Duration::from_secs(1), check()).await {
                Ok(r) => r,
                Err(_) => Err("timeout after 1s".to_owned()),
            };
            out.push((*name, result));
        }
        out
    }
}

#[derive(Clone)]
struct HealthState {
    kit: Arc<Kit>,
    readiness: Readiness,
}

/// The three routes; merged into the service router by `svc_kit::router`.
pub fn routes(kit: Arc<Kit>, readiness: Readiness) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(HealthState { kit, readiness })
}

async fn health(State(s): State<HealthState>) -> Response {
    axum::Json(json!({"status": "ok", "service": s.kit.service, "version": s.kit.version}))
        .into_response()
}

async fn ready(State(s): State<HealthState>) -> Response {
    let results = s.readiness.run().await;
    if results.iter().all(|(_, r)| r.is_ok()) {
        return axum::Json(json!({"status": "ready"})).into_response();
    }
    let mut checks = serde_json::Map::new();
    for (name, result) in results {
        let state = match result {
            Ok(()) => "ok",
            Err(cause) => {
                tracing::warn!(check = name, cause = %cause, "not ready");
                "unavailable"
            }
        };
        checks.insert(name.to_owned(), json!(state));
    }
    let mut res = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"status": "unavailable", "checks": checks})),
    )
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

async fn metrics(State(s): State<HealthState>) -> Response {
    let body = crate::metrics::render(&s.kit.registry);
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
