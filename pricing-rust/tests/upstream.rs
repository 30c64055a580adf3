//! `GET /api/prices/{id}` and `GET /api/prices?ids=` against a real HTTP server standing in
//! for inventory (a test fixture on 127.0.0.1), and against nothing listening.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{assert_error, free_port, get as get_req, memory_state, send};
use pricing::pricing::{PriceInput, quote, to_f64};
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    headers: Mutex<Vec<HeaderMap>>,
    asked: Mutex<Vec<u64>>,
}

fn item(id: u64) -> Option<Value> {
    match id {
        123 => Some(
            json!({"product_id":123,"available":223,"reserved":2,"warehouse":"WH-4",
                           "last_updated":"2026-11-23T10:00:00Z","recent_demand":0}),
        ),
        7 => Some(
            json!({"product_id":7,"available":5,"reserved":0,"warehouse":"WH-1",
                         "last_updated":"2026-11-23T10:00:01Z","recent_demand":30}),
        ),
        // Known to inventory, absent from the price book.
        424_242 => Some(
            json!({"product_id":424242,"available":1,"reserved":0,"warehouse":"WH-1",
                               "last_updated":"2026-11-23T10:00:02Z","recent_demand":0}),
        ),
        _ => None,
    }
}

async fn inventory_get(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut h) = seen.headers.lock() {
        h.push(headers);
    }
    if let Ok(mut a) = seen.asked.lock() {
        a.push(id);
    }
    match id {
        500 => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK.into_response()
        }
        999 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        _ => match item(id) {
            Some(v) => axum::Json(v).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(
                    json!({"error":{"code":"product_not_found","message":"x","request_id":"r"}}),
                ),
            )
                .into_response(),
        },
    }
}

async fn inventory_batch(
    State(seen): State<Arc<Seen>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    let ids: Vec<u64> = body["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if let Ok(mut a) = seen.asked.lock() {
        a.extend(&ids);
    }
    let (found, missing): (Vec<u64>, Vec<u64>) = ids.iter().partition(|id| item(**id).is_some());
    axum::Json(json!({"items": found.iter().filter_map(|id| item(*id)).collect::<Vec<_>>(), "not_found": missing})).into_response()
}

async fn start_inventory() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/api/inventory/{id}", get(inventory_get))
        .route("/api/inventory/batch", post(inventory_batch))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn one_product_is_priced_on_live_stock_in_the_gateway_shape() {
    let (url, seen) = start_inventory().await;
    let app = pricing::app(memory_state(&url, None));
    let req = axum::http::Request::get("/api/prices/123")
        .header("x-request-id", "rid-42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(axum::body::Body::empty())
        .expect("req");
    let (s, h, b) = send(app.clone(), req).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(
        b,
        json!({"product_id":123,
               "inventory":{"available":223,"warehouse":"WH-4","last_updated":"2026-11-23T10:00:00Z"},
               "pricing":{"base_price":173.0,"final_price":164.35,"discount_percent":5.0,"price_tier":"basic"}})
    );
    // The call carried the request id and continued the trace.
    let headers = seen.headers.lock().expect("lock").pop().expect("called");
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("rid-42")
    );
    let tp = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("traceparent");
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !tp.contains("00f067aa0ba902b7"),
        "{tp}"
    );

    assert!(
        headers.get("x-request-deadline-ms").is_none(),
        "no deadline came in, none goes out"
    );

    // A caller's budget travels on, minus what was spent here.
    let req = axum::http::Request::get("/api/prices/123")
        .header("x-request-deadline-ms", "800")
        .body(axum::body::Body::empty())
        .expect("req");
    assert_eq!(send(app.clone(), req).await.0, StatusCode::OK);
    let headers = seen.headers.lock().expect("lock").pop().expect("called");
    let left: u64 = headers
        .get("x-request-deadline-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("deadline propagated");
    assert!(left <= 800, "{left}");

    let (_, _, b) = send(app.clone(), get_req("/api/prices/123?quantity=10")).await;
    assert_eq!(b["pricing"]["price_tier"], "silver");
    assert_eq!(b["pricing"]["final_price"], 155.7);

    // Scarce stock and capped demand from inventory's answer.
    let (_, _, b) = send(app, get_req("/api/prices/7")).await;
    let expected = quote(&PriceInput {
        base_price: "539.06".parse().expect("decimal"),
        quantity_available: 5,
        quantity: 1,
        recent_demand: 30,
    });
    assert_eq!(
        b["pricing"]["final_price"].as_f64(),
        Some(to_f64(expected.final_price)),
        "{b}"
    );
    assert_eq!(b["inventory"]["available"], 5);
}

#[tokio::test]
async fn unknown_products_and_failing_inventory() {
    let (url, seen) = start_inventory().await;
    let app = pricing::app(memory_state(&url, None));
    let (s, _, b) = send(app.clone(), get_req("/api/prices/31337")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "product_not_found");
    let (s, _, b) = send(app.clone(), get_req("/api/prices/424242")).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "in inventory but not in the price book"
    );
    assert_error(&b, "product_not_found");

    let before = seen.calls.load(Ordering::SeqCst);
    let (s, h, b) = send(app.clone(), get_req("/api/prices/999")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&b, "upstream_unavailable");
    assert!(h.contains_key(header::RETRY_AFTER));
    assert!(
        !b.to_string().contains("boom"),
        "no upstream body leaks: {b}"
    );
    assert_eq!(
        seen.calls.load(Ordering::SeqCst) - before,
        1,
        "an inner hop is never retried"
    );

    // A hanging inventory: the per-try timeout (300 ms in these tests) answers 503.
    let (s, h, b) = send(app.clone(), get_req("/api/prices/500")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&b, "upstream_unavailable");
    assert!(h.contains_key(header::RETRY_AFTER));

    // The caller's deadline is shorter still.
    let req = axum::http::Request::get("/api/prices/500")
        .header("x-request-deadline-ms", "50")
        .body(axum::body::Body::empty())
        .expect("req");
    let (s, h, b) = send(app, req).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let code = b["error"]["code"].as_str().unwrap_or("");
    assert!(
        code == "deadline_exceeded" || code == "upstream_unavailable",
        "{b}"
    );
    assert!(h.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_batch_is_one_inventory_call_in_the_order_asked() {
    let (url, seen) = start_inventory().await;
    let app = pricing::app(memory_state(&url, None));
    let (s, _, b) = send(app, get_req("/api/prices?ids=7,31337,123,424242,7")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    let ids: Vec<u64> = b["products"]
        .as_array()
        .expect("products")
        .iter()
        .filter_map(|p| p["product_id"].as_u64())
        .collect();
    assert_eq!(ids, [7, 123]);
    assert_eq!(b["not_found"], json!([31337, 424242]));
    assert_eq!(b["products"][1]["pricing"]["final_price"], 164.35);
}

#[tokio::test]
async fn nothing_listening_answers_503_and_opens_the_breaker() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let app = pricing::app(memory_state(&url, None));
    for _ in 0..5 {
        let (s, h, b) = send(app.clone(), get_req("/api/prices/123")).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_error(&b, "upstream_unavailable");
        assert!(h.contains_key(header::RETRY_AFTER));
    }
    // After BREAKER_FAILURES (5) the breaker is open: answers come from it, with the
    // cool-down as Retry-After.
    let (s, h, b) = send(app.clone(), get_req("/api/prices?ids=1,2")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(&b, "upstream_unavailable");
    let retry: u64 = h
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!(retry > 1 && retry <= 60, "{retry}");
    let metrics = send(app, get_req("/metrics")).await.2;
    assert!(
        metrics.as_str().is_some_and(
            |m| m.contains(r#"polyshop_circuit_breaker_state{upstream="inventory"} 2"#)
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn shards_are_asked_only_for_their_own_products() {
    let (a, seen_a) = start_inventory().await;
    let (b, seen_b) = start_inventory().await;
    // Entries are shard names as written (env.md): trimmed, otherwise not normalised, so a
    // trailing slash is part of the name the gateway hashes too.
    let b_name = format!("{b}/");
    let shards = format!("{a}, {b_name}");
    let app = pricing::app(common::memory_state_with(&[("INVENTORY_URLS", &shards)]));
    let ring = svc_client::ShardRing::new([a.clone(), b_name.clone()]);
    let (s, _, body) = send(app.clone(), get_req("/api/prices/123")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = send(app.clone(), get_req("/api/prices/7")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ids: Vec<u64> = (1..=40).collect();
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let (s, _, body) = send(app.clone(), get_req(&format!("/api/prices?ids={list}"))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // One breaker per shard, each with its own gauge.
    let metrics = send(app, get_req("/metrics")).await.2;
    let text = metrics.as_str().unwrap_or_default();
    for name in ["inventory-0", "inventory-1"] {
        assert!(
            text.contains(&format!(
                r#"polyshop_circuit_breaker_state{{upstream="{name}"}} 0"#
            )),
            "{name}: {text}"
        );
    }
    let mut all: Vec<u64> = Vec::new();
    for (url, seen) in [(&a, &seen_a), (&b_name, &seen_b)] {
        let asked = seen.asked.lock().expect("lock").clone();
        for id in &asked {
            assert_eq!(
                ring.shard_for_product(*id),
                Some(url.as_str()),
                "product {id} went to the wrong shard"
            );
        }
        all.extend(asked);
    }
    all.sort_unstable();
    all.dedup();
    let mut expected = ids.clone();
    expected.extend([7, 123]);
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(all, expected, "every product was asked of some shard");
    assert!(
        !seen_a.asked.lock().expect("lock").is_empty()
            && !seen_b.asked.lock().expect("lock").is_empty()
    );
}
