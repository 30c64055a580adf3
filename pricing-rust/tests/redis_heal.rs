//! A Redis peer that vanishes without a FIN or RST (a deleted pod whose IP black-holes
//! packets): the connections open at that moment only time out, which the redis crate's
//! ConnectionManager never treats as a reason to reconnect. Pricing must heal anyway.
//!
//! A proxy in front of a real redis-server plays the vanished pod: `black_hole` freezes
//! every connection open at that moment (sockets kept open, nothing forwarded either way)
//! while new connections go through, as they would to the recreated pod.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{RedisServer, config, get, post_json, send, until};
use serde_json::Value;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

struct Proxy {
    port: u16,
    holes: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let holes: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let registered = holes.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let hole = Arc::new(AtomicBool::new(false));
                registered.lock().expect("lock").push(hole.clone());
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, hole.clone()));
                tokio::spawn(pipe(ro, wi, hole));
            }
        });
        Self { port, holes }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Freezes the connections open now; later ones are forwarded.
    fn black_hole(&self) {
        for h in self.holes.lock().expect("lock").iter() {
            h.store(true, Ordering::SeqCst);
        }
    }
}

// Readiness-based I/O: tokio's io-util (read/write_all) is not among pricing's features.
async fn pipe(from: OwnedReadHalf, to: OwnedWriteHalf, hole: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    'forward: loop {
        if from.readable().await.is_err() {
            break;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        };
        if hole.load(Ordering::SeqCst) {
            break;
        }
        let mut sent = 0;
        while sent < n {
            if to.writable().await.is_err() {
                break 'forward;
            }
            match to.try_write(&buf[sent..n]) {
                Ok(m) => sent += m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break 'forward,
            }
        }
    }
    if hole.load(Ordering::SeqCst) {
        // A vanished peer sends nothing, not even a FIN: keep both halves open for ever.
        let _open = (from, to);
        std::future::pending::<()>().await;
    }
}

async fn ready(app: &Router) -> StatusCode {
    send(app.clone(), get("/ready")).await.0
}

async fn price_of(app: &Router, id: u64) -> (StatusCode, Value) {
    let (s, _, b) = send(
        app.clone(),
        post_json(
            "/api/calculate_price",
            &format!(r#"{{"product_id":{id},"quantity_available":500}}"#),
        ),
    )
    .await;
    (s, b)
}

/// A real redis-server behind the black-hole proxy (None: no redis-server outside CI).
async fn proxied_redis() -> Option<(RedisServer, Proxy)> {
    let redis = RedisServer::start()?;
    let proxy = Proxy::start(redis.port).await;
    Some((redis, proxy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_replaces_a_black_holed_connection() {
    let Some((_redis, proxy)) = proxied_redis().await else {
        return;
    };
    let client = redis::Client::open(proxy.url()).expect("client");
    let handle = pricing::connect_redis(&client, Duration::from_millis(500))
        .await
        .expect("connect");
    let ping = |h: &pricing::redis_conn::RedisConn| {
        let mut c = h.conn();
        async move {
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        }
    };
    assert!(ping(&handle).await);
    proxy.black_hole();
    assert!(!ping(&handle).await, "the old connection is frozen");
    until(
        "a fresh connection answers",
        Duration::from_secs(10),
        || ping(&handle),
    )
    .await;
    assert_eq!(handle.replacements(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pricing_recovers_from_a_redis_that_vanished_without_a_word() {
    let Some((redis, proxy)) = proxied_redis().await else {
        return;
    };
    let cfg = config(&[
        ("REDIS_URL", &proxy.url()),
        ("ADMIN_TOKEN", "s3cret"),
        ("INVENTORY_URL", "http://127.0.0.1:9"),
    ]);
    let app = pricing::app(pricing::start(&cfg).await.expect("start"));
    assert_eq!(ready(&app).await, StatusCode::OK);

    proxy.black_hole();
    assert_eq!(ready(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    until("/ready is 200 again", Duration::from_secs(10), || async {
        ready(&app).await == StatusCode::OK
    })
    .await;

    // A write and a read through Redis (the change evicted the cached price), with the
    // demand projection read too: the book's and the reader's connections both healed.
    let put = Request::put("/api/prices/123")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from(r#"{"base_price":61.5}"#))
        .expect("req");
    let (s, _, b) = send(app.clone(), put).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = price_of(&app, 123).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["base_price"], 61.5);

    // Another replica's change (written and announced behind this one's back) reaches the
    // cache: the frozen subscription was noticed and replaced, not trusted for ever.
    let mut raw = redis.conn().await;
    redis::cmd("HSET")
        .arg(pricing::book::PRICES_KEY)
        .arg(123)
        .arg("62.50")
        .query_async::<()>(&mut raw)
        .await
        .expect("hset");
    until(
        "the cache follows another replica's change",
        Duration::from_secs(10),
        || async {
            redis::cmd("PUBLISH")
                .arg(pricing::book::CHANGED_CHANNEL)
                .arg(123)
                .query_async::<()>(&mut redis.conn().await)
                .await
                .expect("publish");
            price_of(&app, 123).await.1["base_price"] == 62.5
        },
    )
    .await;

    // The demand consumer (its own connection, 5 s response timeout) heals too: an event
    // written after the black-hole ends up in the projection.
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut raw)
        .await
        .expect("TIME");
    redis::cmd("XADD")
        .arg(pricing::demand::STREAM)
        .arg("*")
        .arg("event_id")
        .arg("RES-heal:reserved")
        .arg("type")
        .arg("reserved")
        .arg("product_id")
        .arg(124)
        .arg("quantity")
        .arg(3)
        .arg("ts_ms")
        .arg(secs * 1000 + micros / 1000)
        .query_async::<()>(&mut raw)
        .await
        .expect("xadd");
    until(
        "the consumer counts the event",
        Duration::from_secs(30),
        || async { price_of(&app, 124).await.1["demand_factor"] == 1.03 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_heartbeat_heals_too() {
    let Some((redis, proxy)) = proxied_redis().await else {
        return;
    };
    let client = redis::Client::open(proxy.url()).expect("client");
    let entry = svc_kit::registry::Entry::new("pricing", "rust", "0.1.0", "http://127.0.0.1:1");
    let field = entry.field();
    let heartbeat =
        svc_kit::registry::Heartbeat::start_with(Some(client), entry, Duration::from_millis(200));
    let registered = || async {
        redis::cmd("HEXISTS")
            .arg(svc_kit::registry::HASH_KEY)
            .arg(&field)
            .query_async::<bool>(&mut redis.conn().await)
            .await
            .expect("hexists")
    };
    until("registered", Duration::from_secs(5), registered).await;

    // The link dies silently and the entry is gone: only a beat on a fresh connection can
    // bring it back.
    proxy.black_hole();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis::cmd("HDEL")
        .arg(svc_kit::registry::HASH_KEY)
        .arg(&field)
        .query_async::<()>(&mut redis.conn().await)
        .await
        .expect("hdel");
    until("registered again", Duration::from_secs(10), registered).await;
    heartbeat.stop().await;
}
