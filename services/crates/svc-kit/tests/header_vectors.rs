//! services/contracts/header-vectors.json: every vector of the headers svc-kit handles
//! (X-Request-Deadline-Ms, traceparent, X-Request-Id, Content-Type, Authorization with
//! ADMIN_TOKEN=s3cret) against the parsers, then again through the real router (skipping
//! the bytes `HeaderValue` refuses before any parser runs), plus the `_OTHER` method label.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::routing::{get, post, put};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use svc_kit::config::{CommonConfig, Vars};
use svc_kit::context::{DEADLINE_MS, REQUEST_ID, TRACEPARENT, deadline_from_headers};
use svc_kit::extract::authorize;
use svc_kit::{AdminGuard, AdminToken, ApiError, Json, Kit, Readiness, RequestContext};
use svc_wire::TraceParent;
use tower::ServiceExt;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/header-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read header-vectors.json"))
        .expect("header-vectors.json is JSON")
}

/// Each character of `raw` is one byte (U+0000..U+00FF); `None` = the header is absent.
fn raw_bytes(raw: &Value) -> Option<Vec<u8>> {
    raw.as_str().map(|s| {
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).expect("raw is U+0000..U+00FF"))
            .collect()
    })
}

fn cases(doc: &Value, header: &str) -> Vec<(Option<Vec<u8>>, Value)> {
    let list = doc["headers"][header]["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("no vectors for {header}"));
    assert!(!list.is_empty());
    list.iter()
        .map(|c| (raw_bytes(&c["raw"]), c.clone()))
        .collect()
}

fn show(raw: &Option<Vec<u8>>) -> String {
    match raw {
        None => "<absent>".to_owned(),
        Some(b) if b.len() > 60 => format!(
            "{:?}...({} bytes)",
            String::from_utf8_lossy(&b[..60]),
            b.len()
        ),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn trimmed(b: &[u8]) -> &[u8] {
    svc_wire::trim_ows(b)
}

#[test]
fn parsers_follow_every_vector() {
    let doc = vectors();
    let token = doc["admin_token"].as_str().expect("admin_token");
    let mut n = 0;
    for (raw, case) in cases(&doc, "X-Request-Deadline-Ms") {
        n += 1;
        let want = &case["expect"];
        match &raw {
            None => {
                let now = Instant::now();
                assert_eq!(
                    deadline_from_headers(&HeaderMap::new(), now).ok(),
                    Some(None)
                );
            }
            Some(b) => {
                let got = svc_wire::parse_deadline_ms(b);
                match want.as_u64() {
                    Some(ms) => assert_eq!(got, Ok(ms), "{}", show(&raw)),
                    None => {
                        assert_eq!(want, "malformed");
                        assert!(got.is_err(), "{} parsed as {got:?}", show(&raw));
                    }
                }
            }
        }
    }
    for (raw, case) in cases(&doc, "traceparent") {
        n += 1;
        let got = raw.as_deref().and_then(TraceParent::parse_bytes);
        match case["expect"].as_str() {
            Some("continue") => {
                let p = got.unwrap_or_else(|| panic!("{} not continued", show(&raw)));
                assert_eq!(p.trace_id_hex(), case["trace_id"].as_str().unwrap());
            }
            Some("new") => assert_eq!(got, None, "{}", show(&raw)),
            other => panic!("unknown outcome {other:?}"),
        }
    }
    for (raw, case) in cases(&doc, "X-Request-Id") {
        n += 1;
        let got = svc_wire::request_id(raw.as_deref());
        match case["expect"].as_str() {
            Some("keep") => assert_eq!(
                got.map(str::as_bytes),
                raw.as_deref().map(trimmed),
                "{}",
                show(&raw)
            ),
            Some("new") => assert_eq!(got, None, "{}", show(&raw)),
            other => panic!("unknown outcome {other:?}"),
        }
    }
    for (raw, case) in cases(&doc, "Content-Type") {
        n += 1;
        let got = svc_wire::is_json_content_type(raw.as_deref());
        assert_eq!(got, case["expect"] == "accept", "{}", show(&raw));
    }
    for (raw, case) in cases(&doc, "Authorization") {
        n += 1;
        let got = match authorize(token, raw.as_deref()) {
            Ok(AdminGuard) => "allow",
            Err(ApiError::Unauthorized) => "unauthorized",
            Err(ApiError::Forbidden) => "forbidden",
            Err(other) => panic!("{}: {other}", show(&raw)),
        };
        assert_eq!(got, case["expect"], "{}", show(&raw));
    }
    assert!(n > 100, "only {n} vectors");
}

fn kit() -> Arc<Kit> {
    let vars = Vars::new(|_: &str| None);
    let cfg = CommonConfig::from_vars(&vars, 9000).expect("config");
    Kit::new("test", "0.0.0", &cfg).expect("kit")
}

fn app(kit: Arc<Kit>) -> Router {
    let api = Router::new()
        .route(
            "/api/ctx",
            get(|ctx: RequestContext| async move {
                Json(json!({
                    "request_id": &*ctx.request_id,
                    "trace_id": &*ctx.trace_id,
                    "remaining_ms": ctx.remaining().map(|r| r.as_millis() as u64),
                }))
            }),
        )
        .route(
            "/api/echo",
            post(|Json(v): Json<Value>| async move { Json(v) }),
        )
        .route(
            "/api/admin",
            put(|_: AdminGuard, State(_): State<AdminToken>| async { "ok" }),
        )
        .with_state(AdminToken(Some(Arc::from("s3cret"))));
    svc_kit::router(api, kit, Readiness::new())
}

async fn send(
    app: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(
            *name,
            HeaderValue::from_bytes(value).expect("checked by the caller"),
        );
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
        .await
        .expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

/// The shared error shape, with the request id the response echoes.
fn assert_error(status: StatusCode, headers: &HeaderMap, body: &Value, code: &str, what: &str) {
    let e = &body["error"];
    assert_eq!(e["code"], code, "{what}: {status} {body}");
    assert!(e["message"].is_string(), "{what}: {body}");
    assert_eq!(
        e["request_id"].as_str(),
        headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
        "{what}: {body}"
    );
}

/// The vector's bytes as a header on the wire, or `None` when `HeaderValue` refuses them
/// (NUL, CR, LF, other controls): no HTTP request can carry those.
fn sendable(raw: &Option<Vec<u8>>) -> Option<Option<&[u8]>> {
    match raw {
        None => Some(None),
        Some(b) => HeaderValue::from_bytes(b).ok().map(|_| Some(b.as_slice())),
    }
}

#[tokio::test]
async fn the_router_follows_every_sendable_vector() {
    let doc = vectors();
    let app = app(kit());
    let mut skipped = 0;

    for (raw, case) in cases(&doc, "X-Request-Deadline-Ms") {
        let Some(value) = sendable(&raw) else {
            skipped += 1;
            continue;
        };
        let headers: Vec<(&str, &[u8])> = value.map(|v| (DEADLINE_MS, v)).into_iter().collect();
        let (status, h, body) = send(&app, Method::GET, "/api/ctx", &headers, "").await;
        let what = show(&raw);
        match &case["expect"] {
            Value::String(s) if s == "absent" => {
                assert_eq!(status, StatusCode::OK, "{what}");
                assert_eq!(body["remaining_ms"], Value::Null, "{what}");
            }
            Value::String(s) if s == "malformed" => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
                assert_error(status, &h, &body, "malformed_request", &what);
                // /health ignores it.
                let (status, _, _) = send(&app, Method::GET, "/health", &headers, "").await;
                assert_eq!(status, StatusCode::OK, "{what} on /health");
            }
            Value::Number(ms) if ms.as_u64() == Some(0) => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
                assert_error(status, &h, &body, "deadline_exceeded", &what);
            }
            Value::Number(ms) => {
                let ms = ms.as_u64().unwrap();
                assert_eq!(status, StatusCode::OK, "{what}: {body}");
                let left = body["remaining_ms"].as_u64().expect("a deadline");
                assert!(
                    left <= ms && left + 5_000 >= ms,
                    "{what}: {left} left of {ms}"
                );
            }
            other => panic!("unknown outcome {other}"),
        }
    }

    for (raw, case) in cases(&doc, "traceparent") {
        let Some(value) = sendable(&raw) else {
            skipped += 1;
            continue;
        };
        let headers: Vec<(&str, &[u8])> = value.map(|v| (TRACEPARENT, v)).into_iter().collect();
        let (status, _, body) = send(&app, Method::GET, "/api/ctx", &headers, "").await;
        assert_eq!(status, StatusCode::OK);
        let trace = body["trace_id"].as_str().expect("trace id");
        assert_eq!(trace.len(), 32);
        if case["expect"] == "continue" {
            assert_eq!(trace, case["trace_id"].as_str().unwrap(), "{}", show(&raw));
        } else {
            assert_ne!(trace, "4bf92f3577b34da6a3ce929d0e0e4736", "{}", show(&raw));
        }
    }

    for (raw, case) in cases(&doc, "X-Request-Id") {
        let Some(value) = sendable(&raw) else {
            skipped += 1;
            continue;
        };
        let headers: Vec<(&str, &[u8])> = value.map(|v| (REQUEST_ID, v)).into_iter().collect();
        let (status, h, body) = send(&app, Method::GET, "/api/ctx", &headers, "").await;
        assert_eq!(status, StatusCode::OK);
        let echoed = h[REQUEST_ID].as_bytes();
        assert_eq!(body["request_id"].as_str().map(str::as_bytes), Some(echoed));
        if case["expect"] == "keep" {
            assert_eq!(Some(echoed), value.map(trimmed), "{}", show(&raw));
        } else {
            assert_eq!(echoed.len(), 32, "{}: a fresh UUID4 hex", show(&raw));
            assert_ne!(Some(echoed), value.map(trimmed), "{}", show(&raw));
        }
    }

    for (raw, case) in cases(&doc, "Content-Type") {
        let Some(value) = sendable(&raw) else {
            skipped += 1;
            continue;
        };
        let headers: Vec<(&str, &[u8])> = value
            .map(|v| (header::CONTENT_TYPE.as_str(), v))
            .into_iter()
            .collect();
        let (status, h, body) = send(&app, Method::POST, "/api/echo", &headers, r#"{"a":1}"#).await;
        let what = show(&raw);
        if case["expect"] == "accept" {
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            assert_eq!(body, json!({"a": 1}));
        } else {
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{what}");
            assert_error(status, &h, &body, "unsupported_media_type", &what);
        }
    }

    for (raw, case) in cases(&doc, "Authorization") {
        let Some(value) = sendable(&raw) else {
            skipped += 1;
            continue;
        };
        let headers: Vec<(&str, &[u8])> = value
            .map(|v| (header::AUTHORIZATION.as_str(), v))
            .into_iter()
            .collect();
        let (status, h, body) = send(&app, Method::PUT, "/api/admin", &headers, "").await;
        let what = show(&raw);
        match case["expect"].as_str() {
            Some("allow") => assert_eq!(status, StatusCode::OK, "{what}"),
            Some("unauthorized") => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                assert_error(status, &h, &body, "unauthorized", &what);
            }
            Some("forbidden") => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                assert_error(status, &h, &body, "forbidden", &what);
            }
            other => panic!("unknown outcome {other:?}"),
        }
    }
    // NUL / CR / LF / control vectors exist in every header family.
    assert!(skipped >= 5, "{skipped}");
}

#[tokio::test]
async fn invented_methods_share_one_other_series() {
    let kit = kit();
    let app = app(kit.clone());
    for m in ["FOO1", "FOO2", "BREW", "PROPFIND", "get"] {
        let method = Method::from_bytes(m.as_bytes()).expect("token");
        let (status, h, body) = send(&app, method, "/api/ctx", &[], "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m}");
        assert_error(status, &h, &body, "method_not_allowed", m);
    }
    let (status, _, _) = send(&app, Method::GET, "/api/ctx", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(svc_kit::metrics::render(&kit.registry)).expect("utf-8");
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .collect();
    let other: Vec<&&str> = counts
        .iter()
        .filter(|l| l.contains(r#"http_request_method="_OTHER""#))
        .collect();
    assert_eq!(other.len(), 1, "{counts:#?}");
    assert!(other[0].ends_with(" 5"), "{}", other[0]);
    assert!(
        counts
            .iter()
            .any(|l| l.contains(r#"http_request_method="GET""#))
    );
    for m in ["FOO1", "FOO2", "BREW", "PROPFIND", "\"get\""] {
        assert!(!text.contains(m), "{m} leaked into a label");
    }
}
