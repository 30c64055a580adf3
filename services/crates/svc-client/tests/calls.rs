// Owns the end-to-end behaviour of one call against a real local HTTP server:
// propagation headers, retries, 4xx handling, timeouts, deadlines and client metrics.
mod support;

use std::time::{Duration, Instant};

use support::{Mode, TestServer, client_observations, config, sample, upstream};
use svc_client::{
    BreakerState, CallContext, ClientError, FailureCause, StatusCode, TraceParent, UpstreamConfig,
};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn ctx() -> CallContext {
    CallContext {
        request_id: "req-42".into(),
        traceparent: Some(PARENT.into()),
        deadline: None,
        inner_hop: false,
    }
}

fn with_retries(retries: u32) -> UpstreamConfig {
    UpstreamConfig {
        retries,
        ..config(100, 2, Duration::from_secs(60))
    }
}

#[tokio::test]
async fn get_passes_request_id_and_continues_the_trace() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    let answer = up.get("/api/inventory/123", &ctx()).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json::<serde_json::Value>().unwrap()["ok"], true);

    let seen = server.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/api/inventory/123");
    assert_eq!(seen.headers["x-request-id"], "req-42");
    let sent = TraceParent::parse(seen.headers["traceparent"].to_str().unwrap()).unwrap();
    let parent = TraceParent::parse(PARENT).unwrap();
    assert_eq!(sent.trace_id, parent.trace_id);
    assert_ne!(sent.span_id, parent.span_id);
    assert_eq!(sent.flags, parent.flags);
    // No deadline in the context: nothing to pass on.
    assert!(seen.headers.get("x-request-deadline-ms").is_none());
}

#[tokio::test]
async fn a_missing_or_invalid_traceparent_starts_a_new_trace() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    for incoming in [None, Some("not-a-traceparent".to_owned())] {
        let c = CallContext {
            traceparent: incoming,
            ..ctx()
        };
        up.get("/x", &c).await.unwrap();
        let sent = server.last().headers["traceparent"]
            .to_str()
            .unwrap()
            .to_owned();
        let parsed = TraceParent::parse(&sent).expect("a valid traceparent is sent");
        assert_ne!(
            parsed.trace_id,
            TraceParent::parse(PARENT).unwrap().trace_id
        );
    }
}

#[tokio::test]
async fn post_json_sends_the_body_with_content_type() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    let body = serde_json::json!({"product_id": 123, "quantity": 2});
    up.post_json("/api/reservations", &body, &ctx(), false)
        .await
        .unwrap();
    let seen = server.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
        body
    );
}

#[tokio::test]
async fn idempotent_get_is_tried_one_plus_retries_times() {
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, registry) = upstream(&server.url(), &with_retries(2));
    let err = up.get("/api/inventory/1", &ctx()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Unavailable {
                cause: FailureCause::Status(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.retry_after_secs(), Some(1));
    assert_eq!(server.hits(), 3);
    // Every try carries the same trace but its own span.
    let spans: std::collections::HashSet<String> = server
        .seen()
        .iter()
        .map(|s| s.headers["traceparent"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(spans.len(), 3);
    assert_eq!(client_observations(&registry, "GET", "500"), 3);
}

#[tokio::test]
async fn a_retry_can_recover_the_call() {
    let server = TestServer::start(Mode::StatusTimes(503, 2)).await;
    let (up, registry) = upstream(&server.url(), &with_retries(3));
    let answer = up.get("/api/inventory/1", &ctx()).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(server.hits(), 3);
    assert_eq!(client_observations(&registry, "GET", "503"), 2);
    assert_eq!(client_observations(&registry, "GET", "200"), 1);
}

#[tokio::test]
async fn non_idempotent_post_is_never_retried() {
    let server = TestServer::start(Mode::Status(502)).await;
    let (up, _) = upstream(&server.url(), &with_retries(3));
    let err = up
        .post_json("/api/reservations", &serde_json::json!({}), &ctx(), false)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ClientError::Unavailable {
            cause: FailureCause::Status(502),
            ..
        }
    ));
    assert_eq!(server.hits(), 1);
    // The same POST declared idempotent (it carries an idempotency key) is retried.
    up.post_json("/api/reservations", &serde_json::json!({}), &ctx(), true)
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1 + 4);
}

#[tokio::test]
async fn an_inner_hop_never_retries() {
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, _) = upstream(&server.url(), &with_retries(3));
    let inner = CallContext {
        inner_hop: true,
        ..ctx()
    };
    up.get("/api/inventory/1", &inner).await.unwrap_err();
    assert_eq!(server.hits(), 1);
    up.delete("/api/reservations/RES-1", &inner)
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_4xx_is_an_answer_not_retried_and_not_a_failure() {
    let server = TestServer::start(Mode::Status(404)).await;
    // One failure would open this breaker.
    let cfg = UpstreamConfig {
        retries: 3,
        ..config(1, 1, Duration::from_secs(60))
    };
    let (up, registry) = upstream(&server.url(), &cfg);
    for _ in 0..5 {
        let answer = up.get("/api/inventory/999", &ctx()).await.unwrap();
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        let body: serde_json::Value = answer.json().unwrap();
        assert_eq!(body["error"]["code"], "test_error");
    }
    server.set_mode(Mode::Status(409));
    let answer = up
        .post_json("/api/reservations", &serde_json::json!({}), &ctx(), true)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(server.hits(), 6);
    assert_eq!(up.breaker_state(), BreakerState::Closed);
    assert_eq!(client_observations(&registry, "GET", "404"), 5);
    assert_eq!(client_observations(&registry, "POST", "409"), 1);
}

#[tokio::test]
async fn an_answer_carries_its_headers() {
    // A 421's X-Shard-Owner is how a router learns the owner: headers must reach the caller.
    let server = TestServer::start(Mode::Status(421)).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    let answer = up.get("/api/inventory/7", &ctx()).await.unwrap();
    assert_eq!(answer.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(answer.header("Content-Type"), answer.header("content-type"));
    assert!(answer.headers.contains_key("content-length"));
    assert_eq!(answer.header("x-shard-owner"), None);
}

#[tokio::test]
async fn connection_refused_is_unavailable_and_recorded_with_status_0() {
    // Bind then drop: the port is very likely closed for the next second.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (up, registry) = upstream(&format!("http://{addr}"), &with_retries(1));
    let err = up.get("/api/inventory/1", &ctx()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Unavailable {
                cause: FailureCause::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(client_observations(&registry, "GET", "0"), 2);
}

#[tokio::test]
async fn per_try_timeout_cuts_a_hanging_upstream() {
    let server = TestServer::start(Mode::Hang).await;
    let cfg = UpstreamConfig {
        timeout: Duration::from_millis(200),
        retries: 1,
        ..with_retries(0)
    };
    let (up, registry) = upstream(&server.url(), &cfg);
    let started = Instant::now();
    let err = up.get("/api/inventory/1", &ctx()).await.unwrap_err();
    // The handler hangs 30 s; two tries of 200 ms must come back long before that.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            ClientError::Unavailable {
                cause: FailureCause::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.hits(), 2);
    assert_eq!(client_observations(&registry, "GET", "0"), 2);
}

#[tokio::test]
async fn the_deadline_caps_the_timeout_and_is_sent_downstream() {
    let server = TestServer::start(Mode::Hang).await;
    // A 1-failure breaker: the deadline cutting a try short must not count against the upstream.
    let cfg = UpstreamConfig {
        timeout: Duration::from_secs(20),
        retries: 3,
        ..config(1, 1, Duration::from_secs(60))
    };
    let (up, _) = upstream(&server.url(), &cfg);
    let c = CallContext {
        deadline: Some(Instant::now() + Duration::from_millis(300)),
        ..ctx()
    };
    let started = Instant::now();
    let err = up.get("/api/inventory/1", &c).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, ClientError::DeadlineExceeded), "{err:?}");
    assert_eq!(server.hits(), 1);
    let budget: u64 = server.last().headers["x-request-deadline-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&budget), "{budget}");
    assert_eq!(up.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn the_remaining_budget_is_sent_on_a_normal_call() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    let c = CallContext {
        deadline: Some(Instant::now() + Duration::from_secs(30)),
        ..ctx()
    };
    up.get("/x", &c).await.unwrap();
    let budget: u64 = server.last().headers["x-request-deadline-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1_000..=30_000).contains(&budget), "{budget}");
}

#[tokio::test]
async fn no_budget_left_fails_without_calling() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, registry) = upstream(&server.url(), &with_retries(2));
    let c = CallContext {
        deadline: Some(Instant::now()),
        ..ctx()
    };
    let err = up.get("/x", &c).await.unwrap_err();
    assert!(matches!(err, ClientError::DeadlineExceeded));
    assert_eq!(err.retry_after_secs(), Some(1));
    assert_eq!(server.hits(), 0);
    assert_eq!(client_observations(&registry, "GET", "0"), 0);
}

#[tokio::test]
async fn retries_stop_when_the_budget_cannot_cover_the_backoff() {
    let server = TestServer::start(Mode::Status(500)).await;
    let cfg = UpstreamConfig {
        retries: 5,
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(10),
        ..with_retries(0)
    };
    let (up, _) = upstream(&server.url(), &cfg);
    let c = CallContext {
        deadline: Some(Instant::now() + Duration::from_secs(3)),
        ..ctx()
    };
    let started = Instant::now();
    let err = up.get("/x", &c).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        err,
        ClientError::Unavailable {
            cause: FailureCause::Status(500),
            ..
        }
    ));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn histogram_uses_the_shared_buckets() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, registry) = upstream(&server.url(), &with_retries(0));
    up.get("/x", &ctx()).await.unwrap();
    let labels = [
        ("http_request_method", "GET"),
        ("server_address", "inventory"),
        ("http_response_status_code", "200"),
    ];
    for le in ["0.0005", "0.005", "0.075", "1", "7.5", "10", "+Inf"] {
        let mut with_le = labels.to_vec();
        with_le.push(("le", le));
        assert!(
            sample(
                &registry,
                "http_client_request_duration_seconds_bucket",
                &with_le
            )
            .is_some(),
            "bucket le={le} missing"
        );
    }
    assert_eq!(client_observations(&registry, "GET", "200"), 1);
}

#[tokio::test]
async fn a_path_without_leading_slash_is_rejected_before_any_call() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    let err = up.get("api/x", &ctx()).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest(_)));
    assert_eq!(err.retry_after_secs(), None);
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn an_unsendable_request_id_is_left_out_not_fatal() {
    let server = TestServer::start(Mode::Ok).await;
    let (up, _) = upstream(&server.url(), &with_retries(0));
    for bad in ["", "bad\nid"] {
        let c = CallContext {
            request_id: bad.into(),
            ..ctx()
        };
        up.get("/x", &c).await.unwrap();
        assert!(server.last().headers.get("x-request-id").is_none());
    }
}
