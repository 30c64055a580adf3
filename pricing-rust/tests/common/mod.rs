//! Test helpers shared by pricing's integration tests: app state builders, a request
//! helper, and a real redis-server on a free port (killed on drop).
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use pricing::book::{PriceBook, load_catalog};
use pricing::demand::DemandReader;
use pricing::{AppState, Config};
use serde_json::Value;
use svc_kit::Kit;
use tower::ServiceExt;

pub fn config(pairs: &[(&str, &str)]) -> Config {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Config::from_lookup(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .expect("config")
}

pub fn kit(cfg: &Config) -> Arc<Kit> {
    Kit::new(pricing::SERVICE, "test", &cfg.common).expect("kit")
}

/// Memory-mode state; inventory at `inventory` (nothing needs to listen there).
pub fn memory_state(inventory: &str, admin: Option<&str>) -> AppState {
    let mut pairs = vec![("INVENTORY_URL", inventory), ("UPSTREAM_TIMEOUT_MS", "300")];
    if let Some(t) = admin {
        pairs.push(("ADMIN_TOKEN", t));
    }
    memory_state_with(&pairs)
}

/// Memory-mode state from env pairs.
pub fn memory_state_with(pairs: &[(&str, &str)]) -> AppState {
    let cfg = config(pairs);
    let (_, catalog) = load_catalog().expect("catalog");
    AppState::new(
        kit(&cfg),
        Arc::new(PriceBook::memory(catalog)),
        DemandReader::memory(),
        &cfg.inventory_bases(),
        &cfg.upstream,
        cfg.common.admin_token.clone(),
    )
    .expect("state")
}

pub fn memory_app() -> Router {
    pricing::app(memory_state("http://127.0.0.1:9", Some("s3cret")))
}

pub async fn send(app: Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let res = app.oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

pub fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

/// The shared error JSON with `code`, a message and a request id.
pub fn assert_error(body: &Value, code: &str) {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real redis-server on a free port, stopped on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one; `None` (with the reason printed) only outside CI when redis-server is
    /// missing. In CI (CI=true) a missing redis-server fails the test loudly.
    pub fn start() -> Option<Self> {
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(err) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("redis-server is required in CI (make deps installs it): {err}");
                }
                eprintln!(
                    "SKIPPED: redis-server not found ({err}); install it to run the Redis tests"
                );
                return None;
            }
        };
        let server = Self { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// Stops the server now (a Redis outage).
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(|_| ())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    /// A connection for a test to set up or inspect Redis behind the service's back.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("conn")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 20 ms until it holds; panics after `within`.
pub async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within {within:?}: {what}");
}
