//! Demand projection: units in `reserved` events of the last hour per product, fed by the
//! consumer group `pricing` on the stream `inventory.events` (observability.md).
//!
//! Each reserved event becomes one member `<event_id>|<quantity>` (score = its `ts_ms`) of
//! the sorted set `polyshop:pricing:demand:<product>`. ZADD of the same member is a no-op,
//! so an event delivered twice (a replay after a crash, a claim from a dead consumer)
//! counts once, and the projection lives in Redis, shared by every replica and exact after
//! a restart. An entry is acknowledged only after it is applied.
//!
//! One clock: the window is measured on Redis's own `TIME` (inside the two scripts below),
//! the clock inventory stamped the events with, never on this replica's.

use std::sync::LazyLock;
use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoConsumersReply, StreamReadReply};

use crate::redis_conn::RedisConn;

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

/// KEYS: demand sets; ARGV: window ms. The units inside the window of each set, on Redis's
/// clock.
static RECENT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', key, since, '+inf', 'BYSCORE')) do
    sum = sum + (tonumber(string.match(m, '|(%d+)$')) or 0)
  end
  out[i] = sum
end
return out
",
    )
});

/// KEYS: the stream; ARGV: group, window ms, whether to acknowledge (1/0), the number of
/// events n, then n (demand key, ts ms, member) triples, then the entry ids to acknowledge.
/// Applies the events still inside the window (on Redis's clock), trims each set to the
/// window, and acknowledges in the same atomic step, so an entry is never acknowledged
/// without its event applied.
static APPLY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local window = tonumber(ARGV[2])
local since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - window
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local key, ts, member = ARGV[5 + 3 * i], tonumber(ARGV[6 + 3 * i]), ARGV[7 + 3 * i]
  if ts >= since then
    redis.call('ZADD', key, ts, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. since)
    redis.call('PEXPIRE', key, window)
  end
end
if ARGV[3] == '1' then
  local first = 5 + 3 * n
  if first <= #ARGV then
    redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, first, #ARGV))
  end
end
return n
",
    )
});

/// Reads the projection (`None` connection = memory mode: demand is 0).
#[derive(Clone)]
pub struct DemandReader {
    conn: Option<RedisConn>,
}

impl DemandReader {
    /// Memory mode: no projection, demand 0.
    pub fn memory() -> Self {
        Self { conn: None }
    }

    /// Redis mode.
    pub fn redis(conn: RedisConn) -> Self {
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
        let mut c = conn.conn();
        let mut call = RECENT.prepare_invoke();
        for id in product_ids {
            call.key(demand_key(*id));
        }
        call.arg(WINDOW_MS).invoke_async(&mut c).await
    }
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
    conn: RedisConn,
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
    /// a response timeout above `block`: XREADGROUP BLOCK holds the connection. Every
    /// command takes `conn.conn()` afresh, so after the timeouts of a vanished peer the
    /// next round runs on the manager its watchdog swapped in.
    pub fn new(conn: RedisConn, name: impl Into<String>) -> Self {
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
            .query_async(&mut self.conn.conn())
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
            .query_async(&mut self.conn.conn())
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
            .query_async(&mut self.conn.conn())
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
                    .query_async::<()>(&mut self.conn.conn())
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
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.conn.conn()).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    async fn apply(&mut self, entries: &[StreamId]) -> Result<usize, ConsumeError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let upto = self
            .crash_after
            .map_or(entries.len(), |n| n.min(entries.len()));
        let events: Vec<Reserved> = entries[..upto]
            .iter()
            .filter_map(Reserved::from_entry)
            .collect();
        let crashed = upto < entries.len();
        if crashed && events.is_empty() {
            return Err(ConsumeError::Crash(upto));
        }
        // One round trip per batch, and one atomic step: the acknowledgement can never land
        // without the events it acknowledges.
        let mut call = APPLY.prepare_invoke();
        call.key(STREAM)
            .arg(GROUP)
            .arg(WINDOW_MS)
            .arg(if crashed { "0" } else { "1" })
            .arg(events.len());
        for ev in &events {
            call.arg(demand_key(ev.product_id))
                .arg(ev.ts_ms)
                .arg(format!("{}|{}", ev.event_id, ev.quantity));
        }
        if !crashed {
            for e in entries {
                call.arg(&e.id);
            }
        }
        call.invoke_async::<()>(&mut self.conn.conn()).await?;
        if crashed {
            return Err(ConsumeError::Crash(upto));
        }
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
