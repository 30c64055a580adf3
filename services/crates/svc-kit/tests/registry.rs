//! The registry heartbeat against a real redis-server: the entry's JSON, its expiry (Redis
//! TIME + 6 s, read from Redis, never from this machine's clock), refreshing, deregistering,
//! skipping and pruning expired entries, and registering again after Redis restarts empty.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use svc_kit::registry::{self, EXPIRY_KEY, Entry, HASH_KEY, Heartbeat};

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// `None` (with the reason printed) only outside CI when redis-server is missing.
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Option<Self> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(err) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("redis-server is required in CI (make deps installs it): {err}")
            }
            Err(err) => {
                eprintln!("SKIPPED: redis-server not found ({err})");
                return None;
            }
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port)).expect("client")
    }

    async fn conn(&self) -> ConnectionManager {
        registry::connect(&self.client()).await.expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn redis_now_ms(conn: &mut ConnectionManager) -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await.expect("TIME");
    secs * 1000 + micros / 1000
}

async fn score(conn: &mut ConnectionManager, field: &str) -> Option<i64> {
    let s: Option<f64> = redis::cmd("ZSCORE")
        .arg(EXPIRY_KEY)
        .arg(field)
        .query_async(conn)
        .await
        .expect("ZSCORE");
    s.map(|s| s as i64)
}

/// Polls until `field` scores above `above` (5 s at most) and answers the score.
async fn score_above(conn: &mut ConnectionManager, field: &str, above: i64) -> i64 {
    for _ in 0..500 {
        if let Some(s) = score(conn, field).await.filter(|s| *s > above) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{field} never scored above {above}");
}

fn pricing_entry() -> Entry {
    Entry::new("pricing", "rust", "0.1.0", "http://127.0.0.1:8001")
}

#[tokio::test]
async fn a_beat_writes_the_entry_and_an_expiry_six_seconds_after_redis_time() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut conn = redis.conn().await;
    let entry = pricing_entry();
    let before = redis_now_ms(&mut conn).await;
    let expiry = registry::beat(&mut conn, &entry).await.expect("beat");
    let after = redis_now_ms(&mut conn).await;
    assert!(
        (before + 6000..=after + 6000).contains(&expiry),
        "expiry {expiry}, want Redis TIME + 6000 in [{}, {}]",
        before + 6000,
        after + 6000
    );
    let field = format!("pricing/{}", entry.instance_id);
    assert_eq!(score(&mut conn, &field).await, Some(expiry));
    let raw: String = redis::cmd("HGET")
        .arg(HASH_KEY)
        .arg(&field)
        .query_async(&mut conn)
        .await
        .expect("HGET");
    let value: Value = serde_json::from_str(&raw).expect("JSON");
    assert_eq!(
        value,
        json!({"name": "pricing", "instance_id": entry.instance_id,
               "url": "http://127.0.0.1:8001", "language": "rust", "version": "0.1.0",
               "started_at": entry.started_at, "shard": null})
    );
    assert_eq!(entry.instance_id.len(), 16);
    assert!(entry.instance_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(entry.started_at.ends_with('Z') && entry.started_at.contains('T'));
}

#[tokio::test]
async fn the_heartbeat_refreshes_and_stop_deregisters_both_keys() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut conn = redis.conn().await;
    let hb = Heartbeat::start_with(
        Some(redis.client()),
        pricing_entry(),
        Duration::from_millis(20),
    );
    let field = hb.entry().field();
    let first = score_above(&mut conn, &field, 0).await;
    // A later beat scores later: Redis's clock moved on.
    score_above(&mut conn, &field, first).await;
    hb.stop().await;
    let exists: bool = redis::cmd("HEXISTS")
        .arg(HASH_KEY)
        .arg(&field)
        .query_async(&mut conn)
        .await
        .expect("HEXISTS");
    assert!(!exists, "hash field left after stop");
    assert_eq!(
        score(&mut conn, &field).await,
        None,
        "zset member left after stop"
    );
}

#[tokio::test]
async fn list_skips_expired_entries_and_a_beat_prunes_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut conn = redis.conn().await;
    let mut b = pricing_entry();
    b.instance_id = "b".into();
    let mut a = pricing_entry();
    a.instance_id = "a".into();
    let mut g = Entry::new("gateway", "python", "0.1.0", "http://127.0.0.1:8000");
    g.instance_id = "z".into();
    for e in [&b, &a, &g] {
        registry::beat(&mut conn, e).await.expect("beat");
    }
    // An instance that died without deregistering: its expiry is behind Redis's clock.
    let now = redis_now_ms(&mut conn).await;
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(HASH_KEY)
        .arg("inventory/dead")
        .arg(r#"{"name":"inventory","instance_id":"dead","url":"http://x","language":"go","version":"0","started_at":"2026-01-01T00:00:00Z","shard":null}"#)
        .ignore()
        .cmd("ZADD")
        .arg(EXPIRY_KEY)
        .arg(now - 1)
        .arg("inventory/dead")
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("plant");
    let (clock, live) = registry::list(&mut conn).await.expect("list");
    let fields: Vec<String> = live.iter().map(Entry::field).collect();
    assert_eq!(fields, ["gateway/z", "pricing/a", "pricing/b"]);
    assert!(clock >= now && clock <= redis_now_ms(&mut conn).await);
    registry::beat(&mut conn, &a).await.expect("beat");
    assert_eq!(score(&mut conn, "inventory/dead").await, None);
    let left: bool = redis::cmd("HEXISTS")
        .arg(HASH_KEY)
        .arg("inventory/dead")
        .query_async(&mut conn)
        .await
        .expect("HEXISTS");
    assert!(!left, "a beat left the expired hash field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_registers_again_after_redis_restarts_empty() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let port = redis.port;
    let hb = Heartbeat::start_with(
        Some(redis.client()),
        pricing_entry(),
        Duration::from_millis(20),
    );
    let field = hb.entry().field();
    score_above(&mut redis.conn().await, &field, 0).await;
    drop(redis); // an outage; the restarted server has lost the registry
    tokio::time::sleep(Duration::from_millis(200)).await; // beats fail meanwhile
    let Some(again) = RedisServer::start_on(port) else {
        return;
    };
    score_above(&mut again.conn().await, &field, 0).await;
    hb.stop().await;
}

#[tokio::test]
async fn without_a_registry_url_nothing_runs() {
    let cfg = svc_kit::CommonConfig::from_vars(&svc_kit::config::Vars::new(|_| None), 8001)
        .expect("defaults");
    assert_eq!(cfg.registry_redis_url(), None);
    Heartbeat::start(&cfg, pricing_entry()).stop().await;
}
