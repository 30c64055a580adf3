//! The price book: base prices by product id, seeded from services/catalog/products.json.
//! In memory without REDIS_URL; with it, the hash `polyshop:prices` in Redis behind an
//! in-process cache that a change invalidates here and, through pub/sub, on every replica.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::pricing::base_price_from_f64;
use crate::redis_conn::RedisConn;

/// Redis hash of base prices (field = product id, value = decimal string).
pub const PRICES_KEY: &str = "polyshop:prices";
/// Pub/sub channel announcing a changed price (payload = product id).
pub const CHANGED_CHANNEL: &str = "polyshop:prices:changed";
/// How often the subscription is PINGed (two unanswered in a row drop it).
pub const SUBSCRIPTION_PING_INTERVAL: Duration = Duration::from_secs(2);

/// A price book failure: Redis is unreachable or answered with an error.
#[derive(Debug, thiserror::Error)]
#[error("price book: {0}")]
pub struct BookError(#[from] redis::RedisError);

#[derive(Deserialize)]
struct CatalogFile {
    products: Vec<CatalogProduct>,
}

#[derive(Deserialize)]
struct CatalogProduct {
    id: u64,
    base_price: f64,
}

/// Where the catalog is looked for: the working directory (repo root, container workdir),
/// then the source tree this binary was built from. No env knob: env.md has none for it.
pub fn catalog_candidates() -> Vec<PathBuf> {
    vec![
        PathBuf::from("services/catalog/products.json"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/catalog/products.json"),
    ]
}

/// Loads the seed prices from the first catalog file that exists.
pub fn load_catalog() -> Result<(PathBuf, HashMap<u64, Decimal>), String> {
    for path in catalog_candidates() {
        if path.is_file() {
            let prices = parse_catalog(
                &std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok((path, prices));
        }
    }
    Err("services/catalog/products.json not found (run from the repository root)".to_owned())
}

/// Parses the catalog JSON into base prices.
pub fn parse_catalog(bytes: &[u8]) -> Result<HashMap<u64, Decimal>, String> {
    let file: CatalogFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    file.products
        .into_iter()
        .map(|p| {
            base_price_from_f64(p.base_price)
                .map(|d| (p.id, d))
                .ok_or_else(|| {
                    format!(
                        "product {}: base_price {} out of bounds",
                        p.id, p.base_price
                    )
                })
        })
        .collect()
}

/// The price book of one pricing process.
pub struct PriceBook {
    store: Store,
}

enum Store {
    Memory(RwLock<HashMap<u64, Decimal>>),
    Redis(RedisBook),
}

struct RedisBook {
    conn: RedisConn,
    cache: RwLock<HashMap<u64, Decimal>>,
    // Bumped on every invalidation, so a fill that read Redis before a change cannot put
    // the old price back into the cache after the change evicted it.
    generation: AtomicU64,
    // True while the invalidation subscription is up; without it nothing is cached.
    live: AtomicBool,
}

fn money_string(d: Decimal) -> String {
    let mut d = d;
    d.rescale(2);
    d.to_string()
}

/// Prices per seeding pipeline and per HSCAN page.
const SEED_CHUNK: usize = 5_000;

impl PriceBook {
    /// A book kept in this process only.
    pub fn memory(prices: HashMap<u64, Decimal>) -> Self {
        Self {
            store: Store::Memory(RwLock::new(prices)),
        }
    }

    /// A book in Redis: seeds missing prices from `catalog` (HSETNX never overwrites a
    /// price changed through the admin route, so a restart keeps it) and warms the cache.
    pub async fn redis(
        conn: RedisConn,
        catalog: &HashMap<u64, Decimal>,
    ) -> Result<Self, BookError> {
        let mut c = conn.conn();
        let entries: Vec<(&u64, &Decimal)> = catalog.iter().collect();
        // One pipeline per chunk, each under the connection's response timeout: a single
        // pipeline of a 10^6-product catalog outlived it and the start failed for ever.
        for chunk in entries.chunks(SEED_CHUNK) {
            let mut pipe = redis::pipe();
            for (id, price) in chunk {
                pipe.hset_nx(PRICES_KEY, **id, money_string(**price))
                    .ignore();
            }
            pipe.query_async::<()>(&mut c).await?;
        }
        let book = Self {
            store: Store::Redis(RedisBook {
                conn,
                cache: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                live: AtomicBool::new(false),
            }),
        };
        book.reload().await?;
        Ok(book)
    }

    /// Replaces the cache with the whole hash (start, and after a pub/sub reconnect).
    pub async fn reload(&self) -> Result<(), BookError> {
        let Store::Redis(r) = &self.store else {
            return Ok(());
        };
        let before = r.generation.load(Ordering::Acquire);
        let mut c = r.conn.conn();
        // HSCAN, not HGETALL: one reply per page keeps each under the response timeout
        // and never blocks Redis for the whole hash.
        let mut fresh: HashMap<u64, Decimal> = HashMap::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<(u64, String)>) = redis::cmd("HSCAN")
                .arg(PRICES_KEY)
                .arg(cursor)
                .arg("COUNT")
                .arg(SEED_CHUNK)
                .query_async(&mut c)
                .await?;
            fresh.extend(
                page.into_iter()
                    .filter_map(|(id, v)| v.parse().ok().map(|d| (id, d))),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut cache = r.cache.write().unwrap_or_else(|e| e.into_inner());
        if r.generation.load(Ordering::Acquire) == before {
            *cache = fresh;
        } else {
            cache.clear();
        }
        Ok(())
    }

    /// The base price of `id`, `None` for an unknown product.
    pub async fn get(&self, id: u64) -> Result<Option<Decimal>, BookError> {
        match &self.store {
            Store::Memory(m) => Ok(m
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .copied()),
            Store::Redis(r) => {
                let live = r.live.load(Ordering::Acquire);
                if live {
                    if let Some(p) = r.cache.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
                        return Ok(Some(*p));
                    }
                }
                let before = r.generation.load(Ordering::Acquire);
                let mut c = r.conn.conn();
                let raw: Option<String> = redis::cmd("HGET")
                    .arg(PRICES_KEY)
                    .arg(id)
                    .query_async(&mut c)
                    .await?;
                let price = raw.and_then(|v| v.parse::<Decimal>().ok());
                if let (Some(p), true) = (price, live) {
                    let mut cache = r.cache.write().unwrap_or_else(|e| e.into_inner());
                    if r.generation.load(Ordering::Acquire) == before {
                        cache.insert(id, p);
                    }
                }
                Ok(price)
            }
        }
    }

    /// Sets the base price of a known product; `Ok(false)` when the product is unknown.
    pub async fn set(&self, id: u64, price: Decimal) -> Result<bool, BookError> {
        match &self.store {
            Store::Memory(m) => {
                let mut m = m.write().unwrap_or_else(|e| e.into_inner());
                match m.get_mut(&id) {
                    Some(p) => {
                        *p = price;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Store::Redis(r) => {
                let mut c = r.conn.conn();
                // One script: only a product of the book can be priced, atomically.
                let set: i64 = redis::cmd("EVAL")
                    .arg(
                        "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then \
                         redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); \
                         redis.call('PUBLISH', KEYS[2], ARGV[1]); return 1 end return 0",
                    )
                    .arg(2)
                    .arg(PRICES_KEY)
                    .arg(CHANGED_CHANNEL)
                    .arg(id)
                    .arg(money_string(price))
                    .query_async(&mut c)
                    .await?;
                if set == 1 {
                    // Our own replica does not wait for its pub/sub echo.
                    self.invalidate(Some(id));
                }
                Ok(set == 1)
            }
        }
    }

    /// Turns the cache on (subscription up) or off (lost: every read goes to Redis).
    pub fn set_live(&self, live: bool) {
        if let Store::Redis(r) = &self.store {
            r.live.store(live, Ordering::Release);
        }
    }

    /// Whether the book lives in Redis.
    pub fn is_redis(&self) -> bool {
        matches!(self.store, Store::Redis(_))
    }

    /// Whether reads are served from the cache (memory mode: always).
    pub fn is_live(&self) -> bool {
        match &self.store {
            Store::Memory(_) => true,
            Store::Redis(r) => r.live.load(Ordering::Acquire),
        }
    }

    /// Drops `id` (or everything) from the cache; the next read goes to Redis.
    pub fn invalidate(&self, id: Option<u64>) {
        if let Store::Redis(r) = &self.store {
            let mut cache = r.cache.write().unwrap_or_else(|e| e.into_inner());
            r.generation.fetch_add(1, Ordering::AcqRel);
            match id {
                Some(id) => {
                    cache.remove(&id);
                }
                None => cache.clear(),
            }
        }
    }

    /// Pings Redis (the readiness check); always fine in memory mode.
    pub async fn ping(&self) -> Result<(), String> {
        let Store::Redis(r) = &self.store else {
            return Ok(());
        };
        let mut c = r.conn.conn();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Keeps every replica's cache honest: subscribes to `polyshop:prices:changed` and evicts
/// the product named in each message. Pub/sub rather than a TTL: a price change reaches
/// every replica within a round trip, and reads never pay a Redis call for freshness.
/// Pub/sub drops messages while a subscriber is disconnected, so each (re)subscription
/// reloads the whole book before trusting the cache again.
pub fn spawn_invalidation_listener(
    book: Arc<PriceBook>,
    client: redis::Client,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(CHANGED_CHANNEL).await {
                    Ok(()) => {
                        match book.reload().await {
                            Ok(()) => book.set_live(true),
                            Err(err) => tracing::warn!(error = %err, "price book reload failed"),
                        }
                        let (mut sink, mut messages) = pubsub.split();
                        // The subscription has no response timeout: a Redis gone without a
                        // FIN or RST would leave the cache live and never invalidated. Only
                        // a PING that goes unanswered tells.
                        let mut tick = tokio::time::interval(SUBSCRIPTION_PING_INTERVAL);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        tick.tick().await;
                        let mut unanswered = 0u32;
                        loop {
                            tokio::select! {
                                msg = messages.next() => {
                                    let Some(msg) = msg else { break };
                                    match msg
                                        .get_payload::<String>()
                                        .ok()
                                        .and_then(|p| p.parse::<u64>().ok())
                                    {
                                        Some(id) => book.invalidate(Some(id)),
                                        None => book.invalidate(None),
                                    }
                                }
                                _ = tick.tick() => {
                                    let ping = sink.ping::<redis::Value>();
                                    let answered = matches!(
                                        tokio::time::timeout(Duration::from_secs(1), ping).await,
                                        Ok(Ok(_))
                                    );
                                    unanswered = if answered { 0 } else { unanswered + 1 };
                                    if unanswered >= 2 {
                                        break;
                                    }
                                }
                            }
                        }
                        tracing::warn!("price change subscription lost");
                    }
                    Err(err) => tracing::warn!(error = %err, "price change subscribe failed"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "price change subscription connect failed")
                }
            }
            // Without the subscription the cache could go stale: fall back to Redis reads.
            book.set_live(false);
            book.invalidate(None);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
