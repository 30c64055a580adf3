//! Registry routing (ring.md, "Routers") against a real redis-server and fake inventory
//! shards: real HTTP servers on 127.0.0.1 that register in the registry, hold the products
//! a ring gives them and answer the others 421 with `X-Shard-Owner`, as Go shards do.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{RedisServer, assert_error, config, get as get_req, memory_state_with, send};
use pricing::AppState;
use serde_json::{Value, json};
use svc_client::ShardRing;
use svc_kit::registry::{self, Entry};

/// Who a fake shard says owns a product it does not hold.
#[derive(Clone)]
enum Owners {
    /// The owner on this ring (a shard that knows the current members).
    Ring(Vec<&'static str>),
    /// Always this shard (a stale or confused one).
    Always(&'static str),
}

struct Shard {
    id: &'static str,
    // Products served; every other product is answered 421.
    holds: Box<dyn Fn(u64) -> bool + Send + Sync>,
    owners: Owners,
    calls: AtomicUsize,
    asked: Mutex<Vec<Vec<u64>>>,
    // Each answer waits for this many requests to be in flight (concurrency tests).
    gate: Option<tokio::sync::Barrier>,
}

impl Shard {
    fn owner(&self, id: u64) -> String {
        match &self.owners {
            Owners::Ring(members) => ShardRing::new(members)
                .shard_for_product(id)
                .expect("members")
                .to_owned(),
            Owners::Always(s) => (*s).to_owned(),
        }
    }

    fn misdirected(&self, id: u64) -> Response {
        (
            StatusCode::MISDIRECTED_REQUEST,
            [("x-shard-owner", self.owner(id))],
            axum::Json(json!({"error":{"code":"misdirected_request",
                "message":"product held by another shard","request_id":"r"}})),
        )
            .into_response()
    }

    fn item(&self, id: u64) -> Value {
        // The warehouse names the shard, so an answer shows who served it.
        json!({"product_id": id, "available": 100, "warehouse": self.id,
               "last_updated": "2026-12-03T10:00:00Z", "recent_demand": 0})
    }

    async fn arrived(&self, ids: Vec<u64>) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.asked.lock().expect("lock").push(ids);
        if let Some(gate) = &self.gate {
            gate.wait().await;
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn asked(&self) -> Vec<Vec<u64>> {
        self.asked.lock().expect("lock").clone()
    }
}

async fn shard_get(State(shard): State<Arc<Shard>>, Path(id): Path<u64>) -> Response {
    shard.arrived(vec![id]).await;
    if (shard.holds)(id) {
        axum::Json(shard.item(id)).into_response()
    } else {
        shard.misdirected(id)
    }
}

async fn shard_batch(
    State(shard): State<Arc<Shard>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let ids: Vec<u64> = body["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    shard.arrived(ids.clone()).await;
    // One product held elsewhere makes the whole batch misdirected (inventory-go GetMany).
    if let Some(&away) = ids.iter().find(|id| !(shard.holds)(**id)) {
        return shard.misdirected(away);
    }
    let items: Vec<Value> = ids.iter().map(|id| shard.item(*id)).collect();
    axum::Json(json!({"items": items, "not_found": []})).into_response()
}

/// Starts a fake shard; answers its URL.
async fn serve(shard: Arc<Shard>) -> String {
    let router = Router::new()
        .route("/api/inventory/{id}", get(shard_get))
        .route("/api/inventory/batch", post(shard_batch))
        .with_state(shard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn shard(id: &'static str, holds: impl Fn(u64) -> bool + Send + Sync + 'static) -> Shard {
    Shard {
        id,
        holds: Box::new(holds),
        owners: Owners::Always(id),
        calls: AtomicUsize::new(0),
        asked: Mutex::new(Vec::new()),
        gate: None,
    }
}

/// A shard that holds exactly what `members`' ring gives it, and names owners on it.
fn ring_shard(id: &'static str, members: &[&'static str]) -> Shard {
    let ring = ShardRing::new(members);
    Shard {
        owners: Owners::Ring(members.to_vec()),
        ..shard(id, move |p| ring.shard_for_product(p) == Some(id))
    }
}

/// Serves `shard` and registers it in the registry as inventory shard `shard.id`.
async fn start_shard(redis: &RedisServer, shard: Shard) -> Arc<Shard> {
    let shard = Arc::new(shard);
    let url = serve(shard.clone()).await;
    register(redis, shard.id, &url, "2026-12-03T10:00:00Z").await;
    shard
}

async fn register(redis: &RedisServer, id: &str, url: &str, started_at: &str) {
    let mut entry = Entry::new("inventory", "go", "test", url);
    entry.shard = Some(id.to_owned());
    entry.started_at = started_at.to_owned();
    let mut conn = registry::connect(&redis.client()).await.expect("registry");
    registry::beat(&mut conn, &entry).await.expect("beat");
}

async fn set_record(redis: &RedisServer, epoch: u64, members: &[&str]) {
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("HSET")
        .arg(pricing::shards::RECORD_KEY)
        .arg("epoch")
        .arg(epoch)
        .arg("members")
        .arg(members.join(","))
        .query_async(&mut conn)
        .await
        .expect("hset record");
}

/// Pricing with a static inventory at `fallback`, following the registry. The periodic
/// refresh is an hour apart, so any refresh a test sees was made by a 421.
async fn pricing_following(redis: &RedisServer, fallback: &str) -> AppState {
    let state = memory_state_with(&[("INVENTORY_URL", fallback), ("UPSTREAM_TIMEOUT_MS", "500")]);
    state
        .inventory
        .follow_registry(redis.client(), Duration::from_secs(3600))
        .await;
    state
}

/// The first catalog product (1..=1000) whose owner is `want` on each ring in turn.
fn product(rings: &[(&[&str], &str)]) -> u64 {
    let rings: Vec<(ShardRing, &str)> = rings
        .iter()
        .map(|(m, want)| (ShardRing::new(*m), *want))
        .collect();
    (1..=1000u64)
        .find(|p| {
            rings
                .iter()
                .all(|(r, want)| r.shard_for_product(*p) == Some(want))
        })
        .expect("a product with these owners")
}

async fn price(state: &AppState, id: u64) -> (StatusCode, Value) {
    let (s, _, b) = send(
        pricing::app(state.clone()),
        get_req(&format!("/api/prices/{id}")),
    )
    .await;
    (s, b)
}

async fn prices(state: &AppState, ids: &[u64]) -> (StatusCode, Value) {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let (s, _, b) = send(
        pricing::app(state.clone()),
        get_req(&format!("/api/prices?ids={}", list.join(","))),
    )
    .await;
    (s, b)
}

/// Redis's count of HGETALL calls: one per ring record read (nothing else here sends it).
async fn record_reads(redis: &RedisServer) -> u64 {
    let mut conn = redis.conn().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_hgetall:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("calls"))
}

const TWO: &[&str] = &["inv-0", "inv-1"];
const THREE: &[&str] = &["inv-0", "inv-1", "inv-2"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_go_to_the_record_members_at_their_latest_urls() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // The static fallback and a live shard outside the record must never be asked.
    let fallback = Arc::new(shard("static", |_| true));
    let fallback_url = serve(fallback.clone()).await;
    let inv0 = start_shard(&redis, ring_shard("inv-0", TWO)).await;
    let inv1 = start_shard(&redis, ring_shard("inv-1", TWO)).await;
    let outsider = start_shard(&redis, shard("inv-2", |_| true)).await;
    set_record(&redis, 1, TWO).await;

    // Through start(), as the binary builds it: REGISTRY_URL alone, memory price book.
    let cfg = config(&[
        ("REGISTRY_URL", &redis.url()),
        ("INVENTORY_URL", &fallback_url),
    ]);
    let state = pricing::start(&cfg).await.expect("start");
    assert!(state.inventory.registry_mode());
    let p0 = product(&[(TWO, "inv-0")]);
    let p1 = product(&[(TWO, "inv-1")]);
    let (s, b) = price(&state, p0).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["inventory"]["warehouse"], "inv-0");
    let (s, b) = price(&state, p1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["inventory"]["warehouse"], "inv-1");
    assert_eq!((inv0.calls(), inv1.calls()), (1, 1));
    assert_eq!((fallback.calls(), outsider.calls()), (0, 0));

    // inv-0 restarts at a new URL while its old entry is still live: the newer one is used.
    let restarted = Arc::new(ring_shard("inv-0", TWO));
    let url = serve(restarted.clone()).await;
    register(&redis, "inv-0", &url, "2026-12-03T10:00:00.5Z").await;
    state.inventory.refresh().await;
    let (s, b) = price(&state, p0).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((inv0.calls(), restarted.calls()), (1, 1));

    // The record gone: back to INVENTORY_URLS.
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("DEL")
        .arg(pricing::shards::RECORD_KEY)
        .query_async(&mut conn)
        .await
        .expect("del");
    state.inventory.refresh().await;
    assert!(!state.inventory.registry_mode());
    let (s, b) = price(&state, p0).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["inventory"]["warehouse"], "static");
    state.inventory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_421_refreshes_the_view_and_retries_once_at_the_named_owner() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // The shards already run the three-member ring; pricing still has the two-member one.
    let inv0 = start_shard(&redis, ring_shard("inv-0", THREE)).await;
    let inv1 = start_shard(&redis, ring_shard("inv-1", THREE)).await;
    let inv2 = start_shard(&redis, ring_shard("inv-2", THREE)).await;
    set_record(&redis, 1, TWO).await;
    let state = pricing_following(&redis, "http://127.0.0.1:9").await;
    set_record(&redis, 2, THREE).await;
    let moved = product(&[(TWO, "inv-0"), (THREE, "inv-2")]);
    let reads = record_reads(&redis).await;

    let (s, b) = price(&state, moved).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["inventory"]["warehouse"], "inv-2");
    assert_eq!(inv0.asked(), [[moved]], "asked first on the stale view");
    assert_eq!(inv2.asked(), [[moved]], "retried once at the named owner");
    assert_eq!(inv1.calls(), 0);
    assert_eq!(record_reads(&redis).await, reads + 1, "one refresh");

    // The refreshed view now sends it straight to its owner.
    let (s, _) = price(&state, moved).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!((inv0.calls(), inv2.calls()), (1, 2));
    assert_eq!(record_reads(&redis).await, reads + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_421_naming_a_shard_the_record_does_not_have_yet_is_followed() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Mid-rebalance: inv-2 is registered and holds the product, the record still names
    // two members, and inv-0 has handed the product over.
    let moved = product(&[(TWO, "inv-0"), (THREE, "inv-2")]);
    let inv0 = start_shard(
        &redis,
        Shard {
            owners: Owners::Always("inv-2"),
            ..shard("inv-0", |_| false)
        },
    )
    .await;
    let _inv1 = start_shard(&redis, ring_shard("inv-1", TWO)).await;
    let inv2 = start_shard(&redis, ring_shard("inv-2", THREE)).await;
    set_record(&redis, 1, TWO).await;
    let state = pricing_following(&redis, "http://127.0.0.1:9").await;

    let (s, b) = price(&state, moved).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(inv0.asked(), [[moved]]);
    assert_eq!(
        inv2.asked(),
        [[moved]],
        "followed to the registered non-member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_421_or_an_owner_without_url_is_503_after_one_retry() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Two confused shards pointing at each other, and a third naming a shard nobody runs.
    let inv0 = start_shard(
        &redis,
        Shard {
            owners: Owners::Always("inv-1"),
            ..shard("inv-0", |_| false)
        },
    )
    .await;
    let inv1 = start_shard(
        &redis,
        Shard {
            owners: Owners::Always("inv-0"),
            ..shard("inv-1", |_| false)
        },
    )
    .await;
    let inv2 = start_shard(
        &redis,
        Shard {
            owners: Owners::Always("inv-9"),
            ..shard("inv-2", |_| false)
        },
    )
    .await;
    set_record(&redis, 1, THREE).await;
    let state = pricing_following(&redis, "http://127.0.0.1:9").await;

    let p0 = product(&[(THREE, "inv-0")]);
    let (s, b) = price(&state, p0).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_error(&b, "upstream_unavailable");
    assert_eq!((inv0.calls(), inv1.calls()), (1, 1), "no second retry");

    let p2 = product(&[(THREE, "inv-2")]);
    let (s, b) = price(&state, p2).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_error(&b, "upstream_unavailable");
    assert_eq!((inv0.calls(), inv1.calls(), inv2.calls()), (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_no_live_entry_is_503_and_no_other_shard_is_tried() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fallback = Arc::new(shard("static", |_| true));
    let fallback_url = serve(fallback.clone()).await;
    // inv-1 is a member but never registered; inv-0 would hold anything it is asked.
    let inv0 = start_shard(&redis, shard("inv-0", |_| true)).await;
    set_record(&redis, 1, TWO).await;
    let state = pricing_following(&redis, &fallback_url).await;

    let p1 = product(&[(TWO, "inv-1")]);
    let (s, h, b) = send(
        pricing::app(state.clone()),
        get_req(&format!("/api/prices/{p1}")),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_error(&b, "upstream_unavailable");
    assert!(h.contains_key("retry-after"));
    let p0 = product(&[(TWO, "inv-0")]);
    let (s, b) = prices(&state, &[p0, p1]).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_error(&b, "upstream_unavailable");
    assert_eq!((inv0.calls(), fallback.calls()), (0, 0));

    // The member's products come back as soon as it registers.
    let inv1 = start_shard(&redis, shard("inv-1", |_| true)).await;
    state.inventory.refresh().await;
    let (s, b) = price(&state, p1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(inv1.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answered_421_is_regrouped_over_the_refreshed_view() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let inv0 = start_shard(&redis, ring_shard("inv-0", THREE)).await;
    let inv1 = start_shard(&redis, ring_shard("inv-1", THREE)).await;
    let inv2 = start_shard(&redis, ring_shard("inv-2", THREE)).await;
    set_record(&redis, 1, TWO).await;
    let state = pricing_following(&redis, "http://127.0.0.1:9").await;
    set_record(&redis, 2, THREE).await;

    let stays0 = product(&[(TWO, "inv-0"), (THREE, "inv-0")]);
    let moved = product(&[(TWO, "inv-0"), (THREE, "inv-2")]);
    let stays1 = product(&[(TWO, "inv-1"), (THREE, "inv-1")]);
    let (s, b) = prices(&state, &[stays0, moved, stays1]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let served: Vec<(u64, String)> = b["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| {
            (
                p["product_id"].as_u64().expect("id"),
                p["inventory"]["warehouse"].as_str().expect("wh").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        served,
        [
            (stays0, "inv-0".to_owned()),
            (moved, "inv-2".to_owned()),
            (stays1, "inv-1".to_owned())
        ]
    );
    assert_eq!(b["not_found"], json!([]));
    // inv-0 got the stale group (421), then only what it still owns; inv-1 was asked once.
    assert_eq!(inv0.asked(), [vec![stays0, moved], vec![stays0]]);
    assert_eq!(inv2.asked(), [vec![moved]]);
    assert_eq!(inv1.asked(), [vec![stays1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_421s_share_one_refresh() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const N: usize = 8;
    // inv-0 answers the N stale requests only once all of them have arrived.
    let inv0 = start_shard(
        &redis,
        Shard {
            gate: Some(tokio::sync::Barrier::new(N)),
            ..ring_shard("inv-0", THREE)
        },
    )
    .await;
    let inv2 = start_shard(&redis, ring_shard("inv-2", THREE)).await;
    start_shard(&redis, ring_shard("inv-1", THREE)).await;
    set_record(&redis, 1, TWO).await;
    let state = pricing_following(&redis, "http://127.0.0.1:9").await;
    set_record(&redis, 2, THREE).await;
    let moved = product(&[(TWO, "inv-0"), (THREE, "inv-2")]);
    let reads = record_reads(&redis).await;
    // Redis holds every command for a while, so the refresh the first 421 starts is still
    // running when the others arrive (within 1 s: the router's Redis calls time out then).
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(600)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .expect("client pause");

    let calls = (0..N).map(|_| {
        let state = state.clone();
        tokio::spawn(async move { price(&state, moved).await.0 })
    });
    for status in futures_util::future::join_all(calls).await {
        assert_eq!(status.expect("task"), StatusCode::OK);
    }
    assert_eq!((inv0.calls(), inv2.calls()), (N, N));
    // The first 421 starts a refresh; the ones that land while it runs cannot trust it
    // (it may have read the record before they were sent), so they share one more.
    assert_eq!(record_reads(&redis).await - reads, 2, "refreshes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_last_view() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let fallback = Arc::new(shard("static", |_| true));
    let fallback_url = serve(fallback.clone()).await;
    let inv0 = start_shard(&redis, shard("inv-0", |_| true)).await;
    set_record(&redis, 1, &["inv-0"]).await;
    let state = memory_state_with(&[("INVENTORY_URL", &fallback_url)]);
    // Fast periodic refreshes, so several of them fail while Redis is away.
    state
        .inventory
        .follow_registry(redis.client(), Duration::from_millis(50))
        .await;
    redis.kill().expect("kill redis");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(state.inventory.registry_mode());
    let p = 42;
    let (s, b) = price(&state, p).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["inventory"]["warehouse"], "inv-0");
    assert_eq!((inv0.calls(), fallback.calls()), (1, 0));
    state.inventory.stop().await;
}
