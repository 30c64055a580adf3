// Owns the integration tests' upstream: a real axum server on 127.0.0.1:0 that answers,
// fails, hangs or waits at a gate on demand and records every request it receives.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use svc_client::{ClientMetrics, Upstream, UpstreamConfig};
use tokio::sync::watch;

/// How the server answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 with a small JSON body.
    Ok,
    /// This status with an error JSON body (e.g. 500, 503, 404, 409).
    Status(u16),
    /// The next `n` requests get this status, then the server recovers to `Ok`.
    StatusTimes(u16, u32),
    /// Never answers within any test (30 s).
    Hang,
    /// Waits until [`TestServer::open_gate`], then answers 200.
    Gate,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    gate: watch::Sender<bool>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl TestServer {
    /// Starts the server on the current test runtime; it dies with the test.
    pub async fn start(mode: Mode) -> Self {
        let (gate, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            hits: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            gate,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Requests received so far (counted on arrival, before any hang or gate).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the server saw no request")
    }

    pub fn open_gate(&self) {
        self.shared.gate.send_replace(true);
    }

    /// Polls until `hits() >= n`; panics after 10 s so a broken test cannot hang CI.
    pub async fn wait_hits(&self, n: usize) {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.hits() < n {
            assert!(
                tokio::time::Instant::now() < give_up,
                "server saw {} of {n} requests",
                self.hits()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let mode = {
        let mut current = shared.mode.lock().unwrap();
        let now = *current;
        if let Mode::StatusTimes(code, n) = now {
            *current = if n > 1 {
                Mode::StatusTimes(code, n - 1)
            } else {
                Mode::Ok
            };
            Mode::Status(code)
        } else {
            now
        }
    };
    match mode {
        Mode::Ok => (StatusCode::OK, r#"{"ok":true}"#),
        Mode::StatusTimes(..) => unreachable!("resolved above"),
        Mode::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            r#"{"error":{"code":"test_error","message":"test","request_id":"t"}}"#,
        ),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, r#"{"late":true}"#)
        }
        Mode::Gate => {
            let mut rx = shared.gate.subscribe();
            let _ = rx.wait_for(|open| *open).await;
            (StatusCode::OK, r#"{"ok":true}"#)
        }
    }
}

/// A config for tests: small timeout, no retries, a breaker that needs `failures` to open.
pub fn config(failures: u32, successes: u32, cooldown: Duration) -> UpstreamConfig {
    UpstreamConfig {
        timeout: Duration::from_millis(2000),
        retries: 0,
        breaker_failures: failures,
        breaker_successes: successes,
        breaker_cooldown: cooldown,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
    }
}

/// An upstream named `inventory` pointing at `url`, with its own registry.
pub fn upstream(url: &str, cfg: &UpstreamConfig) -> (Upstream, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let metrics = ClientMetrics::register(&registry).unwrap();
    let up = Upstream::new("inventory", url, cfg, &metrics).unwrap();
    (up, registry)
}

/// Value of the sample `name{labels...}` in the registry's text exposition (what
/// /metrics would serve), matching the given labels regardless of their order.
pub fn sample(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let all = labels.iter().all(|(k, v)| {
            label_text
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        });
        all.then(|| value.trim().parse().unwrap())
    })
}

/// Value of `polyshop_circuit_breaker_state{upstream="inventory"}`.
pub fn breaker_gauge(registry: &prometheus::Registry) -> i64 {
    sample(
        registry,
        "polyshop_circuit_breaker_state",
        &[("upstream", "inventory")],
    )
    .expect("no breaker gauge for inventory") as i64
}

/// Observations of `http_client_request_duration_seconds` for this method and status.
pub fn client_observations(registry: &prometheus::Registry, method: &str, status: &str) -> u64 {
    sample(
        registry,
        "http_client_request_duration_seconds_count",
        &[
            ("http_request_method", method),
            ("server_address", "inventory"),
            ("http_response_status_code", status),
        ],
    )
    .unwrap_or(0.0) as u64
}
