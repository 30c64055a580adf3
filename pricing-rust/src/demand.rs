//! Demand projection: units in `reserved` events of the last hour per product, fed by the
//! consumer group `pricing` on the stream `inventory.events` (observability.md).
//!
//! Each reserved event becomes one member `<event_id>|<quantity>` (score = its `ts_ms`) of
//! the sorted set `polyshop:pricing:demand:<product>`. ZADD of the same member is a no-op,
//! so an event delivered twice (a replay after a crash, a claim from a dead consumer)
//! counts once, and the projection lives in Redis, shared by every replica and exact after
//! a restart. An entry is acknowledged only after it is applied.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoConsumersReply, StreamReadReply};

/// The shared stream.
pub const STREAM: &str = "inventory.events";
/// Pricing's consumer group.
pub const GROUP: &str = "pricing";
/// The demand window.
pub const WINDOW_MS: u64 = 3_600_000;

/// The sorted set of `product_id`'s recent reservations.
pub fn demand_key(product_id: u64) -> String {
    format!("polyshop:pricing:demand:{product_id}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads the projection (`None` connection = memory mode: demand is 0).
#[derive(Clone)]
pub struct DemandReader {
    conn: Option<ConnectionManager>,
}

impl DemandReader {
    /// Memory mode: no projection, demand 0.
    pub fn memory() -> Self {
        Self { conn: None }
    }

    /// Redis mode.
    pub fn redis(conn: ConnectionManager) -> Self {
        Self { conn: Some(conn) }
    }

    /// Units reserved for `product_id` in the last hour.
    pub async fn recent(&self, product_id: u64) -> Result<u64, redis::RedisError> {
        Ok(self
            .recent_many(&[product_id])
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// Units reserved in the last hour for each of `product_ids`, in one round trip.
    pub async fn recent_many(&self, product_ids: &[u64]) -> Result<Vec<u64>, redis::RedisError> {
        let Some(conn) = &self.conn else {
            return Ok(vec![0; product_ids.len()]);
        };
        if product_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = conn.clone();
        let since = now_ms().saturating_sub(WINDOW_MS);
        let mut pipe = redis::pipe();
        for id in product_ids {
            pipe.cmd("ZRANGE")
                .arg(demand_key(*id))
                .arg(since)
                .arg("+inf")
                .arg("BYSCORE");
        }
        let sets: Vec<Vec<String>> = pipe.query_async(&mut c).await?;
        Ok(sets.iter().map(|members| units(members)).collect())
    }
}

fn units(members: &[String]) -> u64 {
    members
        .iter()
        .filter_map(|m| m.rsplit_once('|').and_then(|(_, q)| q.parse::<u64>().ok()))
        .fold(0u64, u64::saturating_add)
}

/// A failed round of the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Redis failed; the round's unacknowledged entries stay pending.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The test hook `crash_after` fired.
    #[error("simulated crash after {0} entries")]
    Crash(usize),
}

/// One consumer of the group; several replicas share the work.
pub struct Consumer {
    conn: ConnectionManager,
    name: String,
    /// Entries per read.
    pub batch: usize,
    /// How long a read for new entries blocks.
    pub block: Duration,
    /// Entries pending longer than this on another consumer are claimed (it has died).
    pub claim_idle: Duration,
    /// Consumers with nothing pending and idle this long are removed from the group (each
    /// restart under the default INSTANCE_ID, hostname-pid, adds a name).
    pub forget_idle: Duration,
    /// Test hook: stop with `ConsumeError::Crash` after applying this many entries of a
    /// batch, before acknowledging them, as a crash would.
    pub crash_after: Option<usize>,
}

impl Consumer {
    /// A consumer named `name` (the INSTANCE_ID). `conn` must be its own connection with
    /// a response timeout above `block`: XREADGROUP BLOCK holds the connection.
    pub fn new(conn: ConnectionManager, name: impl Into<String>) -> Self {
        Self {
            conn,
            name: name.into(),
            batch: 100,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(30),
            forget_idle: Duration::from_secs(3600),
            crash_after: None,
        }
    }

    /// Creates the group (and the stream) if missing, reading from the stream's start so
    /// events written before pricing ever ran still count.
    pub async fn ensure_group(&mut self) -> Result<(), redis::RedisError> {
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// One round: this consumer's own pending entries (left by a crash of a previous run
    /// under the same name), entries of dead consumers, then new ones. Returns how many
    /// entries were applied.
    pub async fn step(&mut self) -> Result<usize, ConsumeError> {
        let mut applied = 0;
        // Own history first: "0" re-delivers what was read but never acknowledged.
        loop {
            let entries = self.read("0", None).await?;
            if entries.is_empty() {
                break;
            }
            applied += self.apply(&entries).await?;
        }
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(&self.name)
            .arg(self.claim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.conn)
            .await?;
        if !claimed.claimed.is_empty() {
            applied += self.apply(&claimed.claimed).await?;
        }
        let fresh = self.read(">", Some(self.block)).await?;
        applied += self.apply(&fresh).await?;
        Ok(applied)
    }

    /// Removes other consumers that hold no pending entries and have been idle longer than
    /// `forget_idle`; returns how many were removed.
    pub async fn forget_idle_consumers(&mut self) -> Result<usize, redis::RedisError> {
        let info: StreamInfoConsumersReply = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(STREAM)
            .arg(GROUP)
            .query_async(&mut self.conn)
            .await?;
        let mut removed = 0;
        for c in info.consumers {
            let idle = Duration::from_millis(c.idle as u64);
            if c.name != self.name && c.pending == 0 && idle >= self.forget_idle {
                redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg(&c.name)
                    .query_async::<()>(&mut self.conn)
                    .await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn read(
        &mut self,
        from: &str,
        block: Option<Duration>,
    ) -> Result<Vec<StreamId>, redis::RedisError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(self.batch);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(STREAM).arg(from);
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.conn).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    async fn apply(&mut self, entries: &[StreamId]) -> Result<usize, ConsumeError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let since = now_ms().saturating_sub(WINDOW_MS);
        let upto = self
            .crash_after
            .map_or(entries.len(), |n| n.min(entries.len()));
        // One round trip per batch. Redis runs a pipeline in order, so the XACK at its end
        // never lands before the ZADDs it acknowledges.
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for entry in &entries[..upto] {
            let Some(ev) = Reserved::from_entry(entry) else {
                continue;
            };
            if ev.ts_ms < since {
                continue;
            }
            let key = demand_key(ev.product_id);
            queued += 1;
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(ev.ts_ms)
                .arg(format!("{}|{}", ev.event_id, ev.quantity))
                .ignore()
                // Keep the set to the window; it expires an hour after its last event.
                .cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({since}"))
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(WINDOW_MS)
                .ignore();
        }
        if upto < entries.len() {
            if queued > 0 {
                pipe.query_async::<()>(&mut self.conn).await?;
            }
            return Err(ConsumeError::Crash(upto));
        }
        let ack = pipe.cmd("XACK").arg(STREAM).arg(GROUP);
        for e in entries {
            ack.arg(&e.id);
        }
        ack.ignore();
        pipe.query_async::<()>(&mut self.conn).await?;
        Ok(entries.len())
    }

    /// Runs until the task is dropped; a failed round is logged and retried after a pause.
    pub async fn run(mut self) {
        loop {
            if let Err(err) = self.ensure_group().await {
                tracing::warn!(error = %err, "demand consumer group setup failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            break;
        }
        let mut last_cleanup = std::time::Instant::now();
        loop {
            if last_cleanup.elapsed() >= Duration::from_secs(60) {
                last_cleanup = std::time::Instant::now();
                if let Err(err) = self.forget_idle_consumers().await {
                    tracing::warn!(error = %err, "demand consumer cleanup failed");
                }
            }
            match self.step().await {
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "demand consumer round failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if err.to_string().contains("NOGROUP") {
                        let _ = self.ensure_group().await;
                    }
                }
            }
        }
    }
}

/// The fields of a `reserved` event that count.
struct Reserved {
    event_id: String,
    product_id: u64,
    quantity: u64,
    ts_ms: u64,
}

impl Reserved {
    fn from_entry(entry: &StreamId) -> Option<Self> {
        let field = |name: &str| entry.get::<String>(name);
        if field("type")? != "reserved" {
            return None;
        }
        let event_id = field("event_id")?;
        if event_id.contains('|') {
            return None;
        }
        Some(Self {
            event_id,
            product_id: field("product_id")?.parse().ok()?,
            quantity: field("quantity")?.parse().ok()?,
            ts_ms: field("ts_ms")?.parse().ok()?,
        })
    }
}
