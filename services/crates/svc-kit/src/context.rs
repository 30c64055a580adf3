//! Request context and the one middleware every request passes: request id, W3C trace
//! context, deadline, body-size pre-check, fault injection, HTTP metrics and the access log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use svc_wire::TraceParent;

use crate::Kit;
use crate::error::ApiError;

/// The header names and their one parser (svc-wire, shared with svc-client).
pub use svc_wire::{DEADLINE_MS, REQUEST_ID, TRACEPARENT, new_request_id, valid_request_id};

/// What a request carries through the service: ids for logs and propagation, and its deadline.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (1..128 chars of `[A-Za-z0-9._-]`).
    pub request_id: Arc<str>,
    /// 32 lowercase hex digits.
    pub trace_id: Arc<str>,
    /// This service's span id, 16 lowercase hex digits.
    pub span_id: Arc<str>,
    /// Trace flags, kept from the caller.
    pub flags: u8,
    /// When the caller's budget runs out.
    pub deadline: Option<Instant>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// Reads the shared headers of env.md; `now` anchors the deadline.
    pub fn from_headers(headers: &HeaderMap, now: Instant) -> Result<Self, ApiError> {
        let mut ctx = Self::ids_from_headers(headers);
        ctx.deadline = deadline_from_headers(headers, now)?;
        Ok(ctx)
    }

    /// The request id and trace context alone (never fails: bad values are replaced).
    pub fn ids_from_headers(headers: &HeaderMap) -> Self {
        let request_id = svc_wire::request_id(headers.get(REQUEST_ID).map(HeaderValue::as_bytes))
            .map(Arc::from)
            .unwrap_or_else(|| Arc::from(new_request_id()));
        // svc-wire's parser, the one svc-client uses too, so incoming and outgoing trace
        // context follow one reading of the W3C rules.
        let trace =
            TraceParent::continue_or_new_bytes(headers.get(TRACEPARENT).map(HeaderValue::as_bytes));
        Self {
            request_id,
            trace_id: Arc::from(trace.trace_id_hex()),
            span_id: Arc::from(trace.span_id_hex()),
            flags: trace.flags,
            deadline: None,
        }
    }

    /// The `traceparent` to send upstream: same trace, this service's span as parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// Budget left before the deadline (`None` when the caller set none).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The context of the request being served by this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

/// The request id of the request being served by this task, if any.
pub fn current_request_id() -> Option<Arc<str>> {
    CURRENT.try_with(|c| c.request_id.clone()).ok()
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<RequestContext>() {
            Some(ctx) => Ok(ctx.clone()),
            // Only without the svc-kit middleware (a bare router in a test).
            None => RequestContext::from_headers(&parts.headers, Instant::now()),
        }
    }
}

/// `X-Request-Deadline-Ms` as an instant (svc-wire's rule: ASCII digits, saturating at
/// 2^31-1 ms); a malformed value is a 400 `malformed_request`.
pub fn deadline_from_headers(
    headers: &HeaderMap,
    now: Instant,
) -> Result<Option<Instant>, ApiError> {
    let Some(raw) = headers.get(DEADLINE_MS) else {
        return Ok(None);
    };
    let ms = svc_wire::parse_deadline_ms(raw.as_bytes())
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
    Ok(now.checked_add(Duration::from_millis(ms)))
}

fn is_quiet(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The middleware: install it with `Router::layer` (svc_kit::router does) so that it runs
/// after routing and sees the matched route template.
pub async fn middleware(State(kit): State<Arc<Kit>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req.uri().path();
    let quiet = is_quiet(path);
    let is_api = path.starts_with("/api/");
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();

    let mut ctx = RequestContext::ids_from_headers(req.headers());
    match deadline_from_headers(req.headers(), start) {
        Ok(deadline) => ctx.deadline = deadline,
        // Only API routes care; /health and friends answer whatever the header says.
        Err(err) if is_api => {
            let res = CURRENT.sync_scope(ctx.clone(), || err.into_response());
            return finish(&kit, &ctx, res, &method, route.as_ref(), start, quiet);
        }
        Err(_) => {}
    }
    req.extensions_mut().insert(ctx.clone());

    let kit2 = kit.clone();
    let work = async move {
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > kit2.max_body_bytes as u64 {
                return ApiError::PayloadTooLarge.into_response();
            }
        }
        if !is_api {
            return next.run(req).await;
        }
        let deadline = req
            .extensions()
            .get::<RequestContext>()
            .and_then(|c| c.deadline);
        let run = async {
            if kit2.fault_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(kit2.fault_delay_ms)).await;
            }
            if kit2.fault_error_rate > 0.0 && rand::random_bool(kit2.fault_error_rate) {
                return ApiError::FaultInjected.into_response();
            }
            next.run(req).await
        };
        match deadline {
            Some(d) if d <= Instant::now() => ApiError::DeadlineExceeded.into_response(),
            Some(d) => tokio::time::timeout_at(d.into(), run)
                .await
                .unwrap_or_else(|_| ApiError::DeadlineExceeded.into_response()),
            None => run.await,
        }
    };
    let res = if quiet {
        CURRENT.scope(ctx.clone(), work).await
    } else {
        let span = tracing::info_span!(
            "request",
            trace_id = %ctx.trace_id,
            span_id = %ctx.span_id,
            request_id = %ctx.request_id,
        );
        CURRENT.scope(ctx.clone(), work.instrument(span)).await
    };
    finish(&kit, &ctx, res, &method, route.as_ref(), start, quiet)
}

fn finish(
    kit: &Kit,
    ctx: &RequestContext,
    mut res: Response,
    method: &axum::http::Method,
    route: Option<&MatchedPath>,
    start: Instant,
    quiet: bool,
) -> Response {
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    if quiet {
        return res;
    }
    let elapsed = start.elapsed();
    let route = route.map_or("unmatched", MatchedPath::as_str);
    let status = res.status().as_u16();
    kit.http.observe(method.as_str(), route, status, elapsed);
    tracing::info!(
        trace_id = %ctx.trace_id,
        span_id = %ctx.span_id,
        request_id = %ctx.request_id,
        method = method.as_str(),
        route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_with_traceparent(value: &str) -> RequestContext {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_str(value).expect("header"));
        RequestContext::ids_from_headers(&headers)
    }

    #[test]
    fn traceparent_is_continued_only_when_valid() {
        let ok = ctx_with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert_eq!(&*ok.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(&*ok.span_id, "00f067aa0ba902b7");
        // The caller's sampling decision travels on.
        assert!(ok.traceparent().ends_with("-00"), "{}", ok.traceparent());
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let ctx = ctx_with_traceparent(bad);
            assert_ne!(&*ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(ctx.trace_id.len(), 32, "{bad}");
            assert!(ctx.traceparent().ends_with("-01"), "{bad}");
        }
    }

    #[test]
    fn context_continues_the_trace_with_a_new_span() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        h.insert(REQUEST_ID, HeaderValue::from_static("req-1"));
        h.insert(DEADLINE_MS, HeaderValue::from_static("250"));
        let now = Instant::now();
        let ctx = RequestContext::from_headers(&h, now).expect("valid headers");
        assert_eq!(&*ctx.request_id, "req-1");
        assert_eq!(&*ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(&*ctx.span_id, "00f067aa0ba902b7");
        assert_eq!(ctx.deadline, Some(now + Duration::from_millis(250)));
        let tp = ctx.traceparent();
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(tp.ends_with("-01"));

        h.insert(DEADLINE_MS, HeaderValue::from_static("-5"));
        assert!(RequestContext::from_headers(&h, now).is_err());
    }
}
