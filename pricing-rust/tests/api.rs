//! Pricing's HTTP API through `app(state).oneshot(..)` in memory mode: happy paths, every
//! bad-input class, admin route, stats, the OpenAPI paths and the README env table.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{assert_error, get, memory_app, memory_state, post_json, send};
use serde_json::{Value, json};

#[tokio::test]
async fn seed_product_is_priced_from_the_catalog() {
    let (s, h, b) = send(
        memory_app(),
        post_json(
            "/api/calculate_price",
            r#"{"product_id":123,"quantity_available":223}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(
        b,
        json!({"product_id":123,"base_price":173.0,"final_price":164.35,"discount_percent":5.0,
               "price_tier":"basic","scarcity_factor":1.0,"demand_factor":1.0,"currency":"USD"})
    );
    // The serialized form keeps the contract's number spelling.
    let res = tower::ServiceExt::oneshot(
        memory_app(),
        post_json(
            "/api/calculate_price",
            r#"{"product_id":123,"quantity_available":223}"#,
        ),
    )
    .await
    .expect("ok");
    let raw = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8(raw.to_vec()).expect("utf8");
    assert!(
        text.contains(r#""final_price":164.35,"discount_percent":5.0,"price_tier":"basic""#),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_product_without_a_base_price_is_404() {
    let (s, _, b) = send(
        memory_app(),
        post_json(
            "/api/calculate_price",
            r#"{"product_id":999999,"quantity_available":5}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "product_not_found");
    // With a base price the book is not needed.
    let (s, _, b) = send(
        memory_app(),
        post_json(
            "/api/calculate_price",
            r#"{"product_id":999999,"quantity_available":5,"base_price":10}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["final_price"], 14.25);
}

#[tokio::test]
async fn every_bad_input_class_gets_the_shared_error_json() {
    let big = format!(
        r#"{{"product_id":1,"quantity_available":1,"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post_json("/api/calculate_price", "{not json"),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_json("/api/calculate_price", ""),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_json(
                "/api/calculate_price",
                r#"{"product_id":1,"quantity_available":1} trailing"#,
            ),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post_json("/api/calculate_price", "[1,2]"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post_json(
                "/api/calculate_price",
                r#"{"product_id":"1","quantity_available":1}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post_json(
                "/api/calculate_price",
                r#"{"product_id":1,"quantity_available":1,"base_price":"cheap"}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post_json(
                "/api/calculate_price",
                r#"{"product_id":1,"quantity_available":1e30}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post_json(
                "/api/calculate_price",
                r#"{"product_id":99999999999999999999,"quantity_available":1}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Request::post("/api/calculate_price")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .expect("req"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Request::post("/api/calculate_price")
                .body(Body::from(r#"{"product_id":1,"quantity_available":1}"#))
                .expect("req"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post_json("/api/calculate_price", &big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            post_json("/api/calculate_prices", r#"{"items":[]}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post_json("/api/calculate_prices", r#"{"items":{}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices/abc"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices/0"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices/1000000001"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices/1?quantity=0"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices/1?quantity=two"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices?ids="),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices?ids=1,x"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            get("/api/prices?ids=%ZZ"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (get("/api/nope"), StatusCode::NOT_FOUND, "not_found"),
        (
            Request::delete("/api/calculate_price")
                .body(Body::empty())
                .expect("req"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::get("/api/stats")
                .header("x-request-deadline-ms", "0")
                .body(Body::empty())
                .expect("req"),
            StatusCode::SERVICE_UNAVAILABLE,
            "deadline_exceeded",
        ),
    ];
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (s, _, b) = send(memory_app(), req).await;
        assert_eq!(s, status, "{what}: {b}");
        assert_error(&b, code);
    }
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"product_id":1,"quantity_available":1}))
        .collect();
    let (s, _, b) = send(
        memory_app(),
        post_json("/api/calculate_prices", &json!({"items": many}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["details"][0]["field"], "items");
    let ids = (1..=101)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (s, _, b) = send(memory_app(), get(&format!("/api/prices?ids={ids}"))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&b, "validation_failed");
}

#[tokio::test]
async fn batch_prices_in_order_and_names_every_bad_field() {
    let body = r#"{"items":[{"product_id":123,"quantity_available":223},{"product_id":7,"quantity_available":5,"quantity":50,"base_price":10,"recent_demand":3}]}"#;
    let (s, _, b) = send(memory_app(), post_json("/api/calculate_prices", body)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r = b["results"].as_array().expect("results");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["final_price"], 164.35);
    assert_eq!(r[1]["price_tier"], "gold");
    assert_eq!(r[1]["final_price"], 13.13); // 10 x 1.03 x 1.5 x 0.85 = 13.1325
    let bad = r#"{"items":[{"product_id":1,"quantity_available":1},{"product_id":0,"quantity_available":-1,"quantity":0}]}"#;
    let (s, _, b) = send(memory_app(), post_json("/api/calculate_prices", bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = b["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "items[1].product_id",
            "items[1].quantity_available",
            "items[1].quantity"
        ]
    );
    let (s, _, b) = send(
        memory_app(),
        post_json(
            "/api/calculate_prices",
            r#"{"items":[{"product_id":1,"quantity_available":"x"}]}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        b["error"]["details"][0]["field"],
        "items[0].quantity_available"
    );
}

#[tokio::test]
async fn stats_are_live() {
    let app = pricing::app(memory_state("http://127.0.0.1:9", None));
    let (_, _, before) = send(app.clone(), get("/api/stats")).await;
    assert_eq!(
        before,
        json!({"service":"pricing-service","language":"Rust","requests_processed":0,"avg_calculation_time_us":0.0})
    );
    for _ in 0..3 {
        send(
            app.clone(),
            post_json(
                "/api/calculate_price",
                r#"{"product_id":1,"quantity_available":1}"#,
            ),
        )
        .await;
    }
    let (_, _, after) = send(app.clone(), get("/api/stats")).await;
    assert_eq!(after["requests_processed"], 3);
    assert!(
        after["avg_calculation_time_us"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{after}"
    );
    let metrics = send(app, get("/metrics")).await.2;
    let text = metrics.as_str().expect("text");
    assert!(
        text.contains(r#"polyshop_pricing_calculations_total{tier="basic"} 3"#),
        "{text}"
    );
    assert!(text.contains("polyshop_pricing_calculation_duration_seconds_count 3"));
    assert!(text.contains(r#"http_route="/api/calculate_price""#));
}

#[tokio::test]
async fn admin_put_changes_the_in_memory_book() {
    let app = memory_app();
    let put = |auth: Option<&str>, id: &str, body: &str| {
        let mut b = Request::put(format!("/api/prices/{id}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(body.to_owned())).expect("req")
    };
    let (s, _, b) = send(app.clone(), put(None, "123", r#"{"base_price":50.0}"#)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&b, "unauthorized");
    let (s, _, b) = send(
        app.clone(),
        put(Some("Bearer wrong"), "123", r#"{"base_price":50.0}"#),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_error(&b, "forbidden");
    let (s, _, b) = send(
        app.clone(),
        put(Some("Bearer s3cret"), "123", r#"{"base_price":0}"#),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["details"][0]["field"], "base_price");
    let (s, _, b) = send(
        app.clone(),
        put(Some("Bearer s3cret"), "999999", r#"{"base_price":5}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "product_not_found");
    let (s, _, b) = send(
        app.clone(),
        put(Some("Bearer s3cret"), "123", r#"{"base_price":50.0}"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"product_id":123,"base_price":50.0}));
    let (_, _, b) = send(
        app,
        post_json(
            "/api/calculate_price",
            r#"{"product_id":123,"quantity_available":223}"#,
        ),
    )
    .await;
    assert_eq!(b["base_price"], 50.0);
    assert_eq!(b["final_price"], 47.5);

    let off = pricing::app(memory_state("http://127.0.0.1:9", None));
    let (s, _, b) = send(
        off,
        put(Some("Bearer s3cret"), "123", r#"{"base_price":50.0}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "not_found");
}

/// Paths and methods of the `paths:` section of an OpenAPI YAML (a line parser is enough:
/// paths sit at two spaces of indent, operations at four).
fn openapi_operations(yaml: &str) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  ").filter(|l| l.starts_with('/')) {
            current = Some(p.trim_end().trim_end_matches(':').to_owned());
        } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')) {
            if ["get", "post", "put", "delete", "patch"].contains(&m) {
                if let Some(p) = &current {
                    ops.push((m.to_uppercase(), p.clone()));
                }
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_router_serves_every_path_of_the_openapi_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/contracts/pricing.openapi.yaml"
    );
    let yaml = std::fs::read_to_string(path).expect("openapi");
    let ops = openapi_operations(&yaml);
    assert!(ops.len() >= 8, "{ops:?}");
    for (method, path) in ops {
        let uri = path.replace("{id}", "123");
        let req = Request::builder()
            .method(method.as_str())
            .uri(&uri)
            .body(Body::empty())
            .expect("req");
        let (s, _, b) = send(memory_app(), req).await;
        let code = b["error"]["code"].as_str().unwrap_or("");
        assert!(
            code != "not_found"
                && code != "method_not_allowed"
                && s != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not routed: {s} {b}"
        );
    }
}

#[test]
fn the_readme_env_table_equals_the_config_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut in_table = false;
    for line in readme.lines() {
        if line.starts_with("| Variable | Default | Description |") {
            in_table = true;
            continue;
        }
        if in_table {
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells[1].starts_with("---") {
                continue;
            }
            rows.push((
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            ));
        }
    }
    // Every name the config code reads, in order.
    let read = std::sync::Mutex::new(Vec::<String>::new());
    pricing::Config::from_lookup(|k| {
        if let Ok(mut r) = read.lock() {
            if !r.iter().any(|n| n == k) {
                r.push(k.to_owned());
            }
        }
        None
    })
    .expect("defaults are valid");
    let mut read = read.into_inner().expect("lock");
    let mut documented: Vec<String> = rows.iter().map(|(n, _)| n.clone()).collect();
    read.sort();
    documented.sort();
    assert_eq!(
        documented, read,
        "README env table names vs the names the code reads"
    );
    // Every documented default is what the code does with the variable unset.
    let cfg = pricing::Config::from_lookup(|_| None).expect("defaults");
    for (name, value) in cfg.effective() {
        let (_, doc) = rows.iter().find(|(n, _)| n == name).expect("documented");
        if name == "INSTANCE_ID" {
            assert_eq!(doc, "hostname-pid");
            assert!(value.ends_with(&format!("-{}", std::process::id())));
        } else {
            assert_eq!(doc, &value, "default of {name}");
        }
    }
}
