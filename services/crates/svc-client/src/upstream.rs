// Owns one upstream service as the caller sees it: the pooled HTTP client, the retry
// loop with its budget and backoff, the breaker bookkeeping and the per-try metrics.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use prometheus::Histogram;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::breaker::{Breaker, BreakerState, Outcome};
use crate::config::UpstreamConfig;
use crate::context::CallContext;
use crate::error::{ClientError, FailureCause};
use crate::metrics::ClientMetrics;
use svc_wire::TraceParent;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_REQUEST_DEADLINE_MS: HeaderName = HeaderName::from_static("x-request-deadline-ms");

/// `Retry-After` suggested when an upstream failed: the smallest the header can say.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A complete answer below 500 (2xx, 3xx or 4xx), body read in full.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// The upstream's status; check it: 404 and 409 arrive here, not as errors.
    pub status: StatusCode,
    /// The answer's headers (e.g. `X-Shard-Owner` on an inventory shard's 421).
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl UpstreamResponse {
    /// Parses the body as JSON; a body that does not match `T` is
    /// [`ClientError::InvalidResponse`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(ClientError::InvalidResponse)
    }

    /// The (first) value of header `name`, if it is visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

/// An [`Upstream`] that cannot be built; `Display` is one line for stderr (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The base URL is not `http://host[:port][/prefix]` (TLS is not compiled in:
    /// calls stay inside the cluster).
    #[error("invalid base URL {0:?}: expected http://host[:port]")]
    BaseUrl(String),
    /// reqwest refused the client settings.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// One upstream service (e.g. `inventory` at `http://127.0.0.1:8002`).
///
/// Cheap to clone (an `Arc`): share one per upstream across all requests so the
/// connection pool and the breaker are shared too.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    base: String,
    client: reqwest::Client,
    config: UpstreamConfig,
    breaker: Arc<Breaker>,
    metrics: ClientMetrics,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.inner.name)
            .field("base", &self.inner.base)
            .field("breaker", &self.breaker_state())
            .finish()
    }
}

enum TryError {
    Timeout,
    Connect,
    Build(reqwest::Error),
}

impl Upstream {
    /// Builds the client for `name` (the `server_address` / `upstream` label value) at
    /// `base_url`, e.g. `http://127.0.0.1:8002`; paths passed to the calls are appended.
    pub fn new(
        name: &str,
        base_url: &str,
        config: &UpstreamConfig,
        metrics: &ClientMetrics,
    ) -> Result<Self, BuildError> {
        let base = check_base_url(base_url)?;
        let client = reqwest::Client::builder()
            // In-cluster calls: a proxy from the environment would only add a hop.
            .no_proxy()
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .user_agent(concat!("polyshop-svc-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Client)?;
        let gauge = metrics.breaker.with_label_values(&[name]);
        let breaker = Breaker::new(
            name,
            config.breaker_failures,
            config.breaker_successes,
            config.breaker_cooldown,
            gauge,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                base,
                client,
                config: config.clone(),
                breaker: Arc::new(breaker),
                metrics: metrics.clone(),
            }),
        })
    }

    /// The upstream's name (metric label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The base URL calls are made against (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The breaker's current state. Open -> half-open happens lazily, on the first
    /// call after the cool-down, so this (and the gauge) says `Open` until then.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// `GET base+path`: idempotent, so retried on failure (unless an inner hop).
    pub async fn get(
        &self,
        path: &str,
        ctx: &CallContext,
    ) -> Result<UpstreamResponse, ClientError> {
        self.call(Method::GET, path, None, ctx, true).await
    }

    /// `DELETE base+path`: idempotent by HTTP semantics, so retried like a GET.
    pub async fn delete(
        &self,
        path: &str,
        ctx: &CallContext,
    ) -> Result<UpstreamResponse, ClientError> {
        self.call(Method::DELETE, path, None, ctx, true).await
    }

    /// `POST base+path` with a JSON body. Retried only when the caller says the call is
    /// `idempotent` (e.g. it carries an idempotency key) and it is not an inner hop.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        ctx: &CallContext,
        idempotent: bool,
    ) -> Result<UpstreamResponse, ClientError> {
        let body =
            serde_json::to_vec(body).map_err(|e| ClientError::InvalidRequest(Box::new(e)))?;
        self.call(Method::POST, path, Some(Bytes::from(body)), ctx, idempotent)
            .await
    }

    /// `PUT base+path` with a JSON body: idempotent by HTTP semantics.
    pub async fn put_json<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        ctx: &CallContext,
    ) -> Result<UpstreamResponse, ClientError> {
        let body =
            serde_json::to_vec(body).map_err(|e| ClientError::InvalidRequest(Box::new(e)))?;
        self.call(Method::PUT, path, Some(Bytes::from(body)), ctx, true)
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        ctx: &CallContext,
        idempotent: bool,
    ) -> Result<UpstreamResponse, ClientError> {
        let cfg = &self.inner.config;
        if !path.starts_with('/') {
            return Err(ClientError::InvalidRequest(
                format!("path must start with '/': {path:?}").into(),
            ));
        }
        let url = format!("{}{}", self.inner.base, path);
        let trace = TraceParent::continue_or_new(ctx.traceparent.as_deref());
        let tries = if idempotent && !ctx.inner_hop {
            1 + cfg.retries
        } else {
            1
        };
        let histogram_ok = |status: &str| {
            self.inner.metrics.duration.with_label_values(&[
                svc_wire::method_label(method.as_str()),
                &self.inner.name,
                status,
            ])
        };

        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = ctx.remaining();
            // Under a millisecond cannot be sent as X-Request-Deadline-Ms (it would say 0).
            if remaining.is_some_and(|r| r < Duration::from_millis(1)) {
                return Err(ClientError::DeadlineExceeded);
            }
            let permit = self
                .inner
                .breaker
                .acquire(Instant::now())
                .map_err(|retry_after| ClientError::BreakerOpen { retry_after })?;
            let (try_timeout, cut_by_deadline) = match remaining {
                Some(r) if r < cfg.timeout => (r, true),
                _ => (cfg.timeout, false),
            };

            let started = Instant::now();
            let result = self
                .try_once(
                    &method,
                    &url,
                    body.clone(),
                    ctx,
                    &trace.child(),
                    remaining,
                    try_timeout,
                )
                .await;
            let elapsed = started.elapsed().as_secs_f64();

            let cause = match result {
                Ok(resp) => {
                    let status = resp.status;
                    histogram_ok(status.as_str()).observe(elapsed);
                    if !status.is_server_error() {
                        permit.record(Outcome::Success);
                        return Ok(resp);
                    }
                    permit.record(Outcome::Failure);
                    FailureCause::Status(status.as_u16())
                }
                Err(TryError::Build(e)) => {
                    permit.record(Outcome::Neutral);
                    return Err(ClientError::InvalidRequest(Box::new(e)));
                }
                Err(TryError::Timeout) if cut_by_deadline => {
                    // Our budget ran out, not the upstream's per-try allowance: no verdict.
                    observe(&histogram_ok("0"), elapsed);
                    permit.record(Outcome::Neutral);
                    return Err(ClientError::DeadlineExceeded);
                }
                Err(TryError::Timeout) => {
                    observe(&histogram_ok("0"), elapsed);
                    permit.record(Outcome::Failure);
                    FailureCause::Timeout
                }
                Err(TryError::Connect) => {
                    observe(&histogram_ok("0"), elapsed);
                    permit.record(Outcome::Failure);
                    FailureCause::Connect
                }
            };

            let unavailable = ClientError::Unavailable {
                retry_after: UNAVAILABLE_RETRY_AFTER,
                cause,
            };
            if attempt >= tries {
                tracing::debug!(upstream = %self.inner.name, %cause, attempt, "upstream failed");
                return Err(unavailable);
            }
            let pause = backoff(cfg, attempt);
            if ctx.remaining().is_some_and(|r| r <= pause) {
                // No time for another try: report what the upstream did, not our clock.
                return Err(unavailable);
            }
            tracing::debug!(upstream = %self.inner.name, %cause, attempt, "upstream retry");
            tokio::time::sleep(pause).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_once(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
        ctx: &CallContext,
        trace: &TraceParent,
        remaining: Option<Duration>,
        timeout: Duration,
    ) -> Result<UpstreamResponse, TryError> {
        let mut req = self.inner.client.request(method.clone(), url);
        // No let-chains: the workspace promises rust-version 1.85.
        if svc_wire::valid_request_id(&ctx.request_id) {
            if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                req = req.header(X_REQUEST_ID, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&trace.to_string()) {
            req = req.header(TRACEPARENT, v);
        }
        if let Some(r) = remaining {
            req = req.header(X_REQUEST_DEADLINE_MS, r.as_millis().to_string());
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b);
        }
        // One timer covers connect, headers and body, so a slow-dripping body cannot
        // outlast the budget either.
        let attempt = async {
            let resp = req.send().await.map_err(classify)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(classify)?;
            Ok(UpstreamResponse {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(TryError::Timeout),
        }
    }
}

fn observe(h: &Histogram, secs: f64) {
    h.observe(secs);
}

fn classify(e: reqwest::Error) -> TryError {
    if e.is_builder() {
        TryError::Build(e)
    } else if e.is_timeout() {
        TryError::Timeout
    } else {
        TryError::Connect
    }
}

/// Pause before retry number `attempt` (1-based): `base * 2^(attempt-1)` capped at
/// `backoff_max`, then a uniform draw from its upper half ("equal jitter"), so that
/// replicas retrying together spread out but never retry instantly.
fn backoff(cfg: &UpstreamConfig, attempt: u32) -> Duration {
    let exp = cfg
        .backoff_base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(cfg.backoff_max);
    let micros = u64::try_from(exp.as_micros()).unwrap_or(u64::MAX);
    if micros < 2 {
        return exp;
    }
    Duration::from_micros(rand::random_range(micros / 2..=micros))
}

fn check_base_url(raw: &str) -> Result<String, BuildError> {
    let bad = || BuildError::BaseUrl(raw.to_owned());
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| bad())?;
    if url.scheme() != "http"
        || url.host_str().is_none_or(str::is_empty)
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(bad());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        assert_eq!(
            check_base_url("http://127.0.0.1:8002").unwrap(),
            "http://127.0.0.1:8002"
        );
        assert_eq!(
            check_base_url("http://inventory:8002/").unwrap(),
            "http://inventory:8002"
        );
        assert_eq!(
            check_base_url(" http://inv/prefix/ ").unwrap(),
            "http://inv/prefix"
        );
        for bad in [
            "",
            "127.0.0.1:8002",
            "https://inventory",
            "ftp://x",
            "http://",
            "http://h/?q=1",
            "http://u:p@h",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        let cfg = UpstreamConfig::default(); // base 50 ms, cap 1 s
        for _ in 0..200 {
            let first = backoff(&cfg, 1);
            assert!(
                first >= Duration::from_millis(25) && first <= Duration::from_millis(50),
                "{first:?}"
            );
            let third = backoff(&cfg, 3);
            assert!(
                third >= Duration::from_millis(100) && third <= Duration::from_millis(200),
                "{third:?}"
            );
            let late = backoff(&cfg, 30);
            assert!(
                late >= Duration::from_millis(500) && late <= Duration::from_secs(1),
                "{late:?}"
            );
        }
        let draws: std::collections::HashSet<Duration> =
            (0..50).map(|_| backoff(&cfg, 2)).collect();
        assert!(draws.len() > 1, "backoff is not jittered");
    }
}
