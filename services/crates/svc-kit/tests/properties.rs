//! Arbitrary bytes into the header parsers, the JSON body decoder and the router: nothing
//! panics, and every refusal is the shared error shape with a code of errors.md.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{post, put};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use svc_kit::config::{CommonConfig, Vars};
use svc_kit::context::{DEADLINE_MS, REQUEST_ID, TRACEPARENT};
use svc_kit::extract::{authorize, parse_json};
use svc_kit::{AdminGuard, AdminToken, ErrorCode, Json, Kit, Readiness};
use tower::ServiceExt;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Order {
    id: u64,
    items: Vec<Item>,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Item {
    sku: String,
    quantity: u32,
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        // Near-valid values reach deeper into the parsers.
        "[ \t]?[0-9a-fA-F-]{0,60}[ \t]?".prop_map(String::into_bytes),
        "[ \t]?(Bearer|bearer|Basic)?[ ]{0,3}[ -~]{0,20}".prop_map(String::into_bytes),
        "[ \t]?application/json(;[ ]?charset=[\"a-zA-Z0-9-]{0,8})?".prop_map(String::into_bytes),
    ]
}

fn json_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        r#"\{("id":-?[0-9]{0,25}(\.[0-9])?,?)?("items":\[(\{"sku":"[a-z]{0,3}","quantity":-?[0-9]{0,12}\},?){0,3}\])?\}"#
            .prop_map(String::into_bytes),
    ]
}

async fn error_shape(res: axum::response::Response) -> (StatusCode, Value) {
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn code_of(status: StatusCode, body: &Value) -> ErrorCode {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}: {body}"));
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    let known = ErrorCode::ALL
        .into_iter()
        .find(|c| c.as_str() == code)
        .unwrap_or_else(|| panic!("unknown code {code}"));
    assert_eq!(known.status(), status, "{body}");
    known
}

fn app() -> Router {
    let vars = Vars::new(|_: &str| None);
    let cfg = CommonConfig::from_vars(&vars, 9000).expect("config");
    let kit: Arc<Kit> = Kit::new("test", "0.0.0", &cfg).expect("kit");
    let api = Router::new()
        .route("/api/orders", post(|Json(_o): Json<Order>| async { "ok" }))
        .route(
            "/api/admin",
            put(
                |_: AdminGuard, axum::extract::State(_): axum::extract::State<AdminToken>| async {
                    "ok"
                },
            ),
        )
        .with_state(AdminToken(Some(Arc::from("s3cret"))));
    svc_kit::router(api, kit, Readiness::new())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn header_parsers_never_panic(raw in bytes()) {
        if let Ok(ms) = svc_wire::parse_deadline_ms(&raw) {
            prop_assert!(ms <= svc_wire::MAX_DEADLINE_MS);
            prop_assert!(svc_wire::trim_ows(&raw).iter().all(u8::is_ascii_digit));
        }
        if let Some(id) = svc_wire::request_id(Some(&raw)) {
            prop_assert!(svc_wire::valid_request_id(id));
        }
        if let Some(p) = svc_wire::TraceParent::parse_bytes(&raw) {
            // What we continue we can send on, and read back the same.
            prop_assert_eq!(svc_wire::TraceParent::parse(&p.to_string()), Some(p));
        }
        let _ = svc_wire::is_json_content_type(Some(&raw));
        match authorize("s3cret", Some(&raw)) {
            Ok(AdminGuard) => prop_assert!(svc_wire::bearer_token(Some(&raw)) == Some(&b"s3cret"[..])),
            Err(e) => {
                let code = e.code();
                prop_assert!(matches!(code, ErrorCode::Unauthorized | ErrorCode::Forbidden));
            }
        }
    }

    #[test]
    fn the_json_decoder_answers_400_or_422(body in json_like()) {
        if let Err(err) = parse_json::<Order>(&body) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let (status, json) = rt.block_on(error_shape(err.into_response()));
            let code = code_of(status, &json);
            prop_assert!(matches!(code, ErrorCode::MalformedRequest | ErrorCode::ValidationFailed), "{json}");
            if code == ErrorCode::ValidationFailed {
                prop_assert!(json["error"]["details"][0]["field"].is_string(), "{json}");
            }
        }
    }

    #[test]
    fn the_router_answers_arbitrary_headers_and_bodies_in_the_shared_shape(
        deadline in proptest::option::of(bytes()),
        trace in proptest::option::of(bytes()),
        request_id in proptest::option::of(bytes()),
        content_type in proptest::option::of(bytes()),
        auth in proptest::option::of(bytes()),
        body in json_like(),
        admin in any::<bool>(),
    ) {
        let mut req = Request::builder()
            .method(if admin { "PUT" } else { "POST" })
            .uri(if admin { "/api/admin" } else { "/api/orders" });
        for (name, value) in [
            (DEADLINE_MS, &deadline),
            (TRACEPARENT, &trace),
            (REQUEST_ID, &request_id),
            (header::CONTENT_TYPE.as_str(), &content_type),
            (header::AUTHORIZATION.as_str(), &auth),
        ] {
            // Bytes HeaderValue refuses cannot arrive over HTTP at all.
            if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_bytes(v).ok()) {
                req = req.header(name, v);
            }
        }
        let req = req.body(Body::from(body)).expect("request");
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let res = rt.block_on(app().oneshot(req)).expect("infallible");
        let echoed = res.headers().get(REQUEST_ID).cloned();
        prop_assert!(echoed.as_ref().is_some_and(|v| svc_wire::valid_request_id(v.to_str().unwrap_or(""))));
        let (status, json) = rt.block_on(error_shape(res));
        if status != StatusCode::OK {
            let code = code_of(status, &json);
            prop_assert!(!matches!(code, ErrorCode::InternalError), "{json}");
            prop_assert_eq!(json["error"]["request_id"].as_str(), echoed.as_ref().and_then(|v| v.to_str().ok()));
        }
    }
}
