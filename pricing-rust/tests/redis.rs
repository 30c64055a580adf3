//! Redis mode against a real redis-server on a free port: the price book (seed, admin
//! change, restart, cross-replica invalidation), readiness, and the demand projection's
//! exactness across a consumer crash, a replay and a claim from a dead consumer.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{RedisServer, config, post_json, send, until};
use pricing::demand::{Consumer, DemandReader, GROUP, STREAM};
use serde_json::Value;

/// Redis's clock in ms: the one the projection's window is measured on (inventory stamps
/// its events with it too), so no test compares two clocks.
async fn redis_now_ms(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await.expect("TIME");
    secs * 1000 + micros / 1000
}

async fn redis_state(redis: &RedisServer) -> pricing::AppState {
    let cfg = config(&[
        ("REDIS_URL", &redis.url()),
        ("ADMIN_TOKEN", "s3cret"),
        ("INVENTORY_URL", "http://127.0.0.1:9"),
    ]);
    pricing::start(&cfg).await.expect("start")
}

async fn redis_app(redis: &RedisServer) -> Router {
    pricing::app(redis_state(redis).await)
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

fn put_price(id: u64, price: f64) -> Request<Body> {
    Request::put(format!("/api/prices/{id}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from(format!(r#"{{"base_price":{price}}}"#)))
        .expect("req")
}

/// Polls `check` for up to 5 s (pub/sub and the consumer are asynchronous).
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    until(what, Duration::from_secs(5), check).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_book_is_seeded_changed_and_survives_a_restart() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let app = redis_app(&redis).await;
    let mut conn = redis.conn().await;
    let seeded: String = redis::cmd("HGET")
        .arg("polyshop:prices")
        .arg(123)
        .query_async(&mut conn)
        .await
        .expect("hget");
    assert_eq!(seeded, "173.00");
    let n: u64 = redis::cmd("HLEN")
        .arg("polyshop:prices")
        .query_async(&mut conn)
        .await
        .expect("hlen");
    assert_eq!(n, 1000);

    assert_eq!(price_of(&app, 123).await.1["base_price"], 173.0);
    let (s, _, b) = send(app.clone(), put_price(123, 50.0)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(price_of(&app, 123).await.1["final_price"], 47.5);
    let stored: String = redis::cmd("HGET")
        .arg("polyshop:prices")
        .arg(123)
        .query_async(&mut conn)
        .await
        .expect("hget");
    assert_eq!(stored, "50.00");
    let (s, _, b) = send(app.clone(), put_price(31337, 5.0)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    common::assert_error(&b, "product_not_found");

    // A restarted pricing (fresh process state, same Redis) keeps the change.
    drop(app);
    let restarted = redis_app(&redis).await;
    assert_eq!(price_of(&restarted, 123).await.1["base_price"], 50.0);
    assert_eq!(price_of(&restarted, 124).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_the_cache_of_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = redis_app(&redis).await;
    let b_state = redis_state(&redis).await;
    let b = pricing::app(b_state.clone());
    eventually("replica b subscribed and cached the book", || async {
        b_state.book.is_live()
    })
    .await;
    assert_eq!(price_of(&b, 123).await.1["base_price"], 173.0);
    send(a.clone(), put_price(123, 60.0)).await;
    eventually("replica b sees the new price", || async {
        price_of(&b, 123).await.1["base_price"] == 60.0
    })
    .await;

    // b serves from its cache: a write behind its back (no message) is not seen...
    let mut conn = redis.conn().await;
    redis::cmd("HSET")
        .arg("polyshop:prices")
        .arg(123)
        .arg("70.00")
        .query_async::<()>(&mut conn)
        .await
        .expect("hset");
    assert_eq!(price_of(&b, 123).await.1["base_price"], 60.0);
    // ...until the change message evicts it.
    redis::cmd("PUBLISH")
        .arg("polyshop:prices:changed")
        .arg("123")
        .query_async::<()>(&mut conn)
        .await
        .expect("publish");
    eventually("the message evicts the cached price", || async {
        price_of(&b, 123).await.1["base_price"] == 70.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_redis_and_a_dead_redis_is_a_503_not_a_500() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let app = redis_app(&redis).await;
    let (s, _, b) = send(app.clone(), common::get("/ready")).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    let _ = redis.kill();
    let (s, _, b) = send(app.clone(), common::get("/ready")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b["checks"]["redis"], "unavailable");
    let (s, _, b) = send(app.clone(), common::get("/health")).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    eventually("book reads fail over to 503", || async {
        let (s, b) = price_of(&app, 321).await;
        assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
        s == StatusCode::SERVICE_UNAVAILABLE && b["error"]["code"] == "upstream_unavailable"
    })
    .await;
}

async fn xadd(
    conn: &mut redis::aio::MultiplexedConnection,
    event_id: &str,
    kind: &str,
    product: u64,
    qty: u64,
    ts: u64,
) {
    redis::cmd("XADD")
        .arg(STREAM)
        .arg("*")
        .arg("event_id")
        .arg(event_id)
        .arg("type")
        .arg(kind)
        .arg("product_id")
        .arg(product)
        .arg("quantity")
        .arg(qty)
        .arg("ts_ms")
        .arg(ts)
        .query_async::<()>(conn)
        .await
        .expect("xadd");
}

async fn consumer(redis: &RedisServer, name: &str) -> Consumer {
    let conn = pricing::connect_redis(&redis.client(), Duration::from_secs(5))
        .await
        .expect("conn");
    let mut c = Consumer::new(conn, name);
    c.batch = 4;
    c.block = Duration::from_millis(20);
    c.ensure_group().await.expect("group");
    c
}

async fn drain(c: &mut Consumer) {
    for _ in 0..100 {
        if c.step().await.expect("step") == 0 {
            return;
        }
    }
    panic!("consumer never drained");
}

async fn pending(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .query_async(conn)
        .await
        .expect("xpending");
    match summary.first() {
        Some(redis::Value::Int(n)) => *n as u64,
        _ => 0,
    }
}

/// 7 reserved events for product 5 (one written twice), units 1+2+...+7 = 28, plus events
/// that must not count: other types, another product, one older than the hour.
async fn produce(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let now = redis_now_ms(conn).await;
    for i in 1..=7u64 {
        xadd(
            conn,
            &format!("RES-{i}:reserved"),
            "reserved",
            5,
            i,
            now - i * 1000,
        )
        .await;
        if i == 3 {
            xadd(conn, "RES-3:reserved", "reserved", 5, 3, now - 3000).await;
        }
        xadd(conn, &format!("RES-{i}:committed"), "committed", 5, i, now).await;
    }
    xadd(
        conn,
        "RES-old:reserved",
        "reserved",
        5,
        100,
        now - 2 * 3_600_000,
    )
    .await;
    xadd(conn, "RES-x:reserved", "reserved", 6, 4, now).await;
    xadd(conn, "restock:5:1", "restocked", 5, 500, now).await;
    28
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_is_exact_after_a_crash_mid_batch_and_a_restart() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut conn = redis.conn().await;
    let expected = produce(&mut conn).await;

    let mut first = consumer(&redis, "pricing-1").await;
    first.crash_after = Some(2);
    // Applies two entries of its first batch of four, then dies before acknowledging.
    assert!(matches!(
        first.step().await,
        Err(pricing::demand::ConsumeError::Crash(2))
    ));
    drop(first);
    assert_eq!(
        pending(&mut conn).await,
        4,
        "the crashed batch stays pending"
    );

    // Restarted under the same name: re-reads its pending entries, then the rest.
    let mut second = consumer(&redis, "pricing-1").await;
    drain(&mut second).await;
    let reader = DemandReader::redis(
        pricing::connect_redis(&redis.client(), Duration::from_secs(1))
            .await
            .expect("conn"),
    );
    assert_eq!(reader.recent(5).await.expect("recent"), expected);
    assert_eq!(reader.recent(6).await.expect("recent"), 4);
    assert_eq!(reader.recent(7).await.expect("recent"), 0);
    assert_eq!(pending(&mut conn).await, 0);

    // A full replay of the stream (a new group reading from 0) changes nothing.
    redis::cmd("XGROUP")
        .arg("SETID")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .query_async::<()>(&mut conn)
        .await
        .expect("setid");
    drain(&mut second).await;
    assert_eq!(reader.recent(5).await.expect("recent"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_dead_consumer_are_claimed_by_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut conn = redis.conn().await;
    let expected = produce(&mut conn).await;
    let mut dead = consumer(&redis, "pricing-dead").await;
    dead.crash_after = Some(1);
    assert!(dead.step().await.is_err());
    drop(dead);

    let mut other = consumer(&redis, "pricing-other").await;
    other.claim_idle = Duration::ZERO;
    drain(&mut other).await;
    assert_eq!(
        pending(&mut conn).await,
        0,
        "the dead consumer's entries were claimed and acknowledged"
    );
    other.forget_idle = Duration::ZERO;
    assert_eq!(
        other.forget_idle_consumers().await.expect("cleanup"),
        1,
        "the dead name is dropped"
    );
    assert_eq!(
        other.forget_idle_consumers().await.expect("cleanup"),
        0,
        "never itself"
    );
    let reader = DemandReader::redis(
        pricing::connect_redis(&redis.client(), Duration::from_secs(1))
            .await
            .expect("conn"),
    );
    assert_eq!(reader.recent(5).await.expect("recent"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calculate_price_uses_the_projection_when_demand_is_omitted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let app = redis_app(&redis).await;
    let mut conn = redis.conn().await;
    let now = redis_now_ms(&mut conn).await;
    for i in 0..3 {
        xadd(
            &mut conn,
            &format!("RES-h{i}:reserved"),
            "reserved",
            123,
            1,
            now,
        )
        .await;
    }
    eventually("the consumer counts 3 units", || async {
        price_of(&app, 123).await.1["demand_factor"] == 1.03
    })
    .await;
    // A batch reads the projection for its lines too (one pipeline).
    let batch = r#"{"items":[{"product_id":124,"quantity_available":500},{"product_id":123,"quantity_available":500},{"product_id":123,"quantity_available":500,"recent_demand":7}]}"#;
    let (s, _, b) = send(app.clone(), post_json("/api/calculate_prices", batch)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let factors: Vec<f64> = b["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["demand_factor"].as_f64())
        .collect();
    assert_eq!(factors, [1.0, 1.03, 1.07]);
    // An explicit recent_demand wins over the projection.
    let (_, _, b) = send(
        app,
        post_json(
            "/api/calculate_price",
            r#"{"product_id":123,"quantity_available":223,"recent_demand":0}"#,
        ),
    )
    .await;
    assert_eq!(b["final_price"], 164.35);
}

/// A big catalog seeds and loads in pages, each under the connection's response timeout:
/// one pipeline (and one HGETALL) of the whole catalog outlived it, so pricing could never
/// start on an empty Redis with 10^6 products (found by make bench's catalog-size pass).
#[tokio::test]
async fn a_big_catalog_seeds_under_a_short_response_timeout() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let catalog: std::collections::HashMap<u64, rust_decimal::Decimal> = (1..=150_000u64)
        .map(|id| (id, rust_decimal::Decimal::new(1999 + (id % 1000) as i64, 2)))
        .collect();
    let conn = pricing::connect_redis(&redis.client(), Duration::from_millis(200))
        .await
        .expect("connect");
    let book = pricing::book::PriceBook::redis(conn, &catalog)
        .await
        .expect("seeds in pages");
    assert_eq!(
        book.get(150_000).await.expect("get"),
        Some(rust_decimal::Decimal::new(1999, 2))
    );
    let mut raw = redis.conn().await;
    let n: u64 = redis::cmd("HLEN")
        .arg(pricing::book::PRICES_KEY)
        .query_async(&mut raw)
        .await
        .expect("HLEN");
    assert_eq!(n, 150_000);
}
