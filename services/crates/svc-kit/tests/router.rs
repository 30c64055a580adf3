//! svc-kit's router behaviour end to end through `oneshot`: error shapes of the fallbacks
//! and extractors, body limits, request ids, deadlines, fault injection, health, metrics,
//! admin auth, and the error code table against services/contracts/errors.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post, put};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use svc_kit::config::{CommonConfig, Vars};
use svc_kit::{AdminGuard, AdminToken, ApiError, ErrorCode, Json, Kit, Readiness};
use tower::ServiceExt;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Echo {
    n: i64,
}

#[derive(Clone)]
struct St {
    admin: AdminToken,
}

impl FromRef<St> for AdminToken {
    fn from_ref(s: &St) -> AdminToken {
        s.admin.clone()
    }
}

fn kit(pairs: &[(&str, &str)]) -> Arc<Kit> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let vars = Vars::new(move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
    let cfg = CommonConfig::from_vars(&vars, 9000).expect("config");
    Kit::new("test", "0.0.0", &cfg).expect("kit")
}

fn app_with(kit: Arc<Kit>, ready: Arc<AtomicBool>, token: Option<&str>) -> Router {
    let api = Router::new()
        .route(
            "/api/echo",
            post(|Json(e): Json<Echo>| async move { Json(serde_json::json!({"n": e.n})) }),
        )
        .route("/api/items/{id}", get(|| async { "item" }))
        .route(
            "/api/boom",
            get(|| async { Err::<(), _>(ApiError::internal("db password is hunter2")) }),
        )
        .route(
            "/api/admin",
            put(|_: AdminGuard, State(_): State<St>| async { "ok" }),
        )
        .with_state(St {
            admin: AdminToken(token.map(Arc::from)),
        });
    let readiness = Readiness::new().check("store", move || {
        let ready = ready.clone();
        async move {
            if ready.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("down".to_owned())
            }
        }
    });
    svc_kit::router(api, kit, readiness)
}

fn app() -> Router {
    app_with(
        kit(&[("MAX_BODY_BYTES", "64")]),
        Arc::new(AtomicBool::new(true)),
        Some("s3cret"),
    )
}

async fn send(app: Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let res = app.oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, body)
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

fn assert_error(body: &Value, code: &str) {
    let err = &body["error"];
    assert_eq!(err["code"], code, "{body}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        err["request_id"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_route_and_wrong_method_use_the_shared_shape() {
    let (s, _, b) = send(
        app(),
        Request::get("/nope").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "not_found");
    let (s, h, b) = send(
        app(),
        Request::delete("/api/echo")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&b, "method_not_allowed");
    assert_eq!(
        h.get(header::ALLOW).and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test]
async fn body_errors_map_to_400_413_415_422() {
    let (s, _, b) = send(app(), post_json("/api/echo", "{\"n\":")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&b, "malformed_request");

    let (s, _, b) = send(app(), post_json("/api/echo", "{\"n\":\"x\"}")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&b, "validation_failed");
    assert_eq!(b["error"]["details"][0]["field"], "n");

    let (s, _, b) = send(app(), post_json("/api/echo", "{}")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["details"][0]["field"], "n");

    let req = Request::post("/api/echo")
        .body(Body::from("{\"n\":1}"))
        .expect("req");
    let (s, _, b) = send(app(), req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&b, "unsupported_media_type");

    let big = format!("{{\"n\":1,\"pad\":\"{}\"}}", "x".repeat(100));
    let (s, _, b) = send(app(), post_json("/api/echo", &big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&b, "payload_too_large");

    // Chunked (no Content-Length): the limit still holds while reading.
    let stream = futures_stream(big);
    let req = Request::post("/api/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .body(stream)
        .expect("req");
    let (s, _, b) = send(app(), req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&b, "payload_too_large");

    let (s, _, b) = send(app(), post_json("/api/echo", "{\"n\":7}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["n"], 7);
}

fn futures_stream(text: String) -> Body {
    // A body without a known length, as a chunked upload arrives.
    let (first, rest) = text.split_at(10);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from(first.to_owned())),
        Ok(bytes::Bytes::from(rest.to_owned())),
    ];
    Body::from_stream(tokio_stream_iter(chunks))
}

fn tokio_stream_iter(
    items: Vec<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    struct Iter(std::vec::IntoIter<Result<bytes::Bytes, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test]
async fn server_errors_hide_the_cause() {
    let (s, _, b) = send(
        app(),
        Request::get("/api/boom").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error(&b, "internal_error");
    assert!(!b.to_string().contains("hunter2"));
}

#[tokio::test]
async fn request_ids_are_kept_when_valid_and_echoed() {
    let req = Request::get("/api/items/1")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .expect("req");
    let (_, h, _) = send(app(), req).await;
    assert_eq!(
        h.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    let req = Request::get("/nope")
        .header("x-request-id", "bad id!")
        .body(Body::empty())
        .expect("req");
    let (_, h, b) = send(app(), req).await;
    let id = h
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("echoed")
        .to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(b["error"]["request_id"], id.as_str());
}

#[tokio::test]
async fn deadlines_are_honoured() {
    let req = Request::get("/api/items/1")
        .header("x-request-deadline-ms", "0")
        .body(Body::empty())
        .expect("req");
    let (s, h, b) = send(app(), req).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&b, "deadline_exceeded");
    assert_eq!(
        h.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
        Some("1")
    );

    let req = Request::get("/api/items/1")
        .header("x-request-deadline-ms", "5000")
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(app(), req).await.0, StatusCode::OK);

    let req = Request::get("/api/items/1")
        .header("x-request-id", "keep-me")
        .header("x-request-deadline-ms", "soon")
        .body(Body::empty())
        .expect("req");
    let (s, _, b) = send(app(), req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&b, "malformed_request");
    assert_eq!(b["error"]["request_id"], "keep-me");
    let req = Request::get("/health")
        .header("x-request-deadline-ms", "soon")
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(app(), req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn faults_hit_api_routes_only() {
    let faulty = app_with(
        kit(&[("FAULT_ERROR_RATE", "1")]),
        Arc::new(AtomicBool::new(true)),
        None,
    );
    let (s, _, b) = send(
        faulty.clone(),
        Request::get("/api/items/1")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error(&b, "fault_injected");
    let (s, _, b) = send(
        faulty,
        Request::get("/health").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let ready = Arc::new(AtomicBool::new(true));
    let k = kit(&[]);
    let app = app_with(k, ready.clone(), None);
    let (s, _, b) = send(
        app.clone(),
        Request::get("/health").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        serde_json::json!({"status": "ok", "service": "test", "version": "0.0.0"})
    );
    let (s, _, b) = send(
        app.clone(),
        Request::get("/ready").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(
        (s, b),
        (StatusCode::OK, serde_json::json!({"status": "ready"}))
    );
    ready.store(false, Ordering::SeqCst);
    let (s, h, b) = send(
        app.clone(),
        Request::get("/ready").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        b,
        serde_json::json!({"status": "unavailable", "checks": {"store": "unavailable"}})
    );
    assert!(h.contains_key(header::RETRY_AFTER));

    send(
        app.clone(),
        Request::get("/api/items/42")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    send(
        app.clone(),
        Request::get("/missing/7").body(Body::empty()).expect("req"),
    )
    .await;
    let res = app
        .oneshot(Request::get("/metrics").body(Body::empty()).expect("req"))
        .await
        .expect("ok");
    let text = String::from_utf8(
        res.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec(),
    )
    .expect("utf8");
    assert!(text.contains(
        r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/api/items/{id}",le="0.0005"}"#
    ), "{text}");
    assert!(text.contains(r#"http_route="unmatched""#));
    assert!(!text.contains(r#"http_route="/health""#) && !text.contains(r#"http_route="/ready""#));
    assert!(!text.contains("/api/items/42"));
    #[cfg(target_os = "linux")]
    assert!(text.contains("process_resident_memory_bytes"));
}

#[tokio::test]
async fn admin_routes_check_the_bearer_token() {
    let put = |auth: Option<&str>| {
        let mut b = Request::put("/api/admin");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).expect("req")
    };
    assert_eq!(
        send(app(), put(Some("Bearer s3cret"))).await.0,
        StatusCode::OK
    );
    let (s, _, b) = send(app(), put(None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&b, "unauthorized");
    let (s, _, b) = send(app(), put(Some("Bearer nope"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_error(&b, "forbidden");
    let off = app_with(kit(&[]), Arc::new(AtomicBool::new(true)), None);
    let (s, _, b) = send(off, put(Some("Bearer s3cret"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "not_found");
}

#[test]
fn error_codes_equal_the_contract() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/errors.md");
    let text = std::fs::read_to_string(path).expect("errors.md");
    let table: Vec<(String, u16)> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let status = cells.get(2)?.parse().ok()?;
            Some((code.to_owned(), status))
        })
        .collect();
    let ours: Vec<(String, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status().as_u16()))
        .collect();
    assert_eq!(ours, table);
}
