// Owns the circuit breaker's behaviour seen from outside: against a real local server,
// through the public API, with the Prometheus gauge checked at every transition.
mod support;

use std::time::{Duration, Instant};

use support::{Mode, TestServer, breaker_gauge, config, upstream};
use svc_client::{BreakerState, CallContext, ClientError, StatusCode};

fn ctx() -> CallContext {
    CallContext::new("req-breaker")
}

/// Waits out a cool-down (plus a margin); sleeping is setup here, never an assertion.
async fn sleep_past(cooldown: Duration) {
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
}

#[tokio::test]
async fn opens_after_n_failures_then_fails_fast_without_calling() {
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, registry) = upstream(&server.url(), &config(3, 2, Duration::from_secs(60)));
    assert_eq!(breaker_gauge(&registry), 0);
    for _ in 0..2 {
        let err = up.get("/x", &ctx()).await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable { .. }), "{err:?}");
    }
    assert_eq!(up.breaker_state(), BreakerState::Closed);
    up.get("/x", &ctx()).await.unwrap_err();
    assert_eq!(up.breaker_state(), BreakerState::Open);
    assert_eq!(breaker_gauge(&registry), 2);
    assert_eq!(server.hits(), 3);

    // The upstream has recovered, but an open breaker does not even ask it.
    server.set_mode(Mode::Ok);
    for _ in 0..10 {
        match up.get("/x", &ctx()).await.unwrap_err() {
            ClientError::BreakerOpen { retry_after } => {
                assert!(
                    retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60)
                );
            }
            other => panic!("expected BreakerOpen, got {other:?}"),
        }
    }
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn failures_must_be_consecutive() {
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, _) = upstream(&server.url(), &config(2, 1, Duration::from_secs(60)));
    for _ in 0..5 {
        server.set_mode(Mode::Status(500));
        up.get("/x", &ctx()).await.unwrap_err();
        server.set_mode(Mode::Ok);
        up.get("/x", &ctx()).await.unwrap();
    }
    assert_eq!(up.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn timeouts_and_refused_connections_count_as_failures() {
    let server = TestServer::start(Mode::Hang).await;
    let cfg = svc_client::UpstreamConfig {
        timeout: Duration::from_millis(100),
        ..config(2, 1, Duration::from_secs(60))
    };
    let (up, registry) = upstream(&server.url(), &cfg);
    up.get("/x", &ctx()).await.unwrap_err();
    up.get("/x", &ctx()).await.unwrap_err();
    assert_eq!(up.breaker_state(), BreakerState::Open);
    assert_eq!(breaker_gauge(&registry), 2);

    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (refused, registry) = upstream(&format!("http://{addr}"), &cfg);
    refused.get("/x", &ctx()).await.unwrap_err();
    refused.get("/x", &ctx()).await.unwrap_err();
    assert_eq!(refused.breaker_state(), BreakerState::Open);
    assert_eq!(breaker_gauge(&registry), 2);
}

#[tokio::test]
async fn half_opens_after_cooldown_and_closes_after_m_successes() {
    let cooldown = Duration::from_millis(300);
    let server = TestServer::start(Mode::Status(503)).await;
    let (up, registry) = upstream(&server.url(), &config(2, 2, cooldown));
    up.get("/x", &ctx()).await.unwrap_err();
    up.get("/x", &ctx()).await.unwrap_err();
    assert_eq!(breaker_gauge(&registry), 2);

    server.set_mode(Mode::Ok);
    sleep_past(cooldown).await;
    assert_eq!(up.get("/x", &ctx()).await.unwrap().status, StatusCode::OK);
    assert_eq!(up.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(breaker_gauge(&registry), 1);
    up.get("/x", &ctx()).await.unwrap();
    assert_eq!(up.breaker_state(), BreakerState::Closed);
    assert_eq!(breaker_gauge(&registry), 0);
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_half_open_failure_opens_it_again() {
    let cooldown = Duration::from_millis(300);
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, registry) = upstream(&server.url(), &config(1, 2, cooldown));
    up.get("/x", &ctx()).await.unwrap_err();
    assert_eq!(breaker_gauge(&registry), 2);

    sleep_past(cooldown).await;
    // The trial reaches the upstream, which still fails.
    let err = up.get("/x", &ctx()).await.unwrap_err();
    assert!(matches!(err, ClientError::Unavailable { .. }), "{err:?}");
    assert_eq!(server.hits(), 2);
    assert_eq!(up.breaker_state(), BreakerState::Open);
    assert_eq!(breaker_gauge(&registry), 2);
    // Open again for a fresh cool-down: fails fast, no request.
    assert!(matches!(
        up.get("/x", &ctx()).await.unwrap_err(),
        ClientError::BreakerOpen { .. }
    ));
    assert_eq!(server.hits(), 2);

    // And it can still recover after that.
    server.set_mode(Mode::Ok);
    sleep_past(cooldown).await;
    up.get("/x", &ctx()).await.unwrap();
    up.get("/x", &ctx()).await.unwrap();
    assert_eq!(up.breaker_state(), BreakerState::Closed);
    assert_eq!(breaker_gauge(&registry), 0);
}

#[tokio::test]
async fn a_4xx_trial_counts_as_success() {
    let cooldown = Duration::from_millis(300);
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, _) = upstream(&server.url(), &config(1, 1, cooldown));
    up.get("/x", &ctx()).await.unwrap_err();
    server.set_mode(Mode::Status(404));
    sleep_past(cooldown).await;
    assert_eq!(
        up.get("/x", &ctx()).await.unwrap().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(up.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn concurrent_calls_while_half_open_admit_only_the_trial_budget() {
    let cooldown = Duration::from_millis(300);
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, registry) = upstream(&server.url(), &config(1, 2, cooldown));
    up.get("/x", &ctx()).await.unwrap_err();
    assert_eq!(server.hits(), 1);

    // Trials will hang at the gate until we open it, so the budget stays in use.
    server.set_mode(Mode::Gate);
    sleep_past(cooldown).await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let up = up.clone();
            tokio::spawn(async move { up.get("/x", &ctx()).await })
        })
        .collect();
    server.wait_hits(1 + 2).await;

    // Give the other eight every chance to (wrongly) get through before opening the gate.
    let give_up = Instant::now() + Duration::from_secs(10);
    while calls.iter().filter(|c| c.is_finished()).count() < 8 {
        assert!(Instant::now() < give_up, "rejected calls did not fail fast");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.hits(), 3);
    assert_eq!(breaker_gauge(&registry), 1);
    server.open_gate();

    let mut ok = 0;
    let mut rejected = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(answer) => {
                assert_eq!(answer.status, StatusCode::OK);
                ok += 1;
            }
            Err(ClientError::BreakerOpen { retry_after }) => {
                assert!(retry_after >= Duration::from_secs(1));
                rejected += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, rejected), (2, 8));
    assert_eq!(server.hits(), 3);
    assert_eq!(up.breaker_state(), BreakerState::Closed);
    assert_eq!(breaker_gauge(&registry), 0);
}

#[tokio::test]
async fn a_cancelled_trial_frees_its_slot() {
    let cooldown = Duration::from_millis(300);
    let server = TestServer::start(Mode::Status(500)).await;
    let (up, _) = upstream(&server.url(), &config(1, 1, cooldown));
    up.get("/x", &ctx()).await.unwrap_err();
    server.set_mode(Mode::Hang);
    sleep_past(cooldown).await;
    // The caller gives up on its own (e.g. its client disconnected): the future is dropped.
    let cancelled = tokio::time::timeout(Duration::from_millis(100), up.get("/x", &ctx())).await;
    assert!(cancelled.is_err());
    assert_eq!(up.breaker_state(), BreakerState::HalfOpen);
    server.set_mode(Mode::Ok);
    up.get("/x", &ctx()).await.unwrap();
    assert_eq!(up.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn each_upstream_has_its_own_breaker_and_gauge() {
    let bad = TestServer::start(Mode::Status(500)).await;
    let good = TestServer::start(Mode::Ok).await;
    let registry = prometheus::Registry::new();
    let metrics = svc_client::ClientMetrics::register(&registry).unwrap();
    let cfg = config(1, 1, Duration::from_secs(60));
    let inventory = svc_client::Upstream::new("inventory", &bad.url(), &cfg, &metrics).unwrap();
    let pricing = svc_client::Upstream::new("pricing", &good.url(), &cfg, &metrics).unwrap();
    inventory.get("/x", &ctx()).await.unwrap_err();
    pricing.get("/x", &ctx()).await.unwrap();
    assert_eq!(inventory.breaker_state(), BreakerState::Open);
    assert_eq!(pricing.breaker_state(), BreakerState::Closed);
    assert_eq!(
        support::sample(
            &registry,
            "polyshop_circuit_breaker_state",
            &[("upstream", "inventory")]
        ),
        Some(2.0)
    );
    assert_eq!(
        support::sample(
            &registry,
            "polyshop_circuit_breaker_state",
            &[("upstream", "pricing")]
        ),
        Some(0.0)
    );
    // A second registration in the same registry is refused rather than silently split.
    assert!(svc_client::ClientMetrics::register(&registry).is_err());
}
