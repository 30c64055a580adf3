//! The service registry of services/contracts/ring.md ("Registry (Redis)"): this
//! instance's [`Entry`], a [`Heartbeat`] that registers it every 2 s through
//! services/contracts/registry.lua (embedded here, the one text every language runs) and
//! deregisters it on shutdown, and [`list`], the live entries.
//!
//! A Redis that is away never reaches the requests: the heartbeat runs in its own task,
//! logs once per outage and registers again when Redis answers.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::CommonConfig;

/// The registry's hash: `{name}/{instance_id}` -> the instance's JSON.
pub const HASH_KEY: &str = "polyshop:registry";
/// The registry's sorted set: the same field, scored by its expiry in Unix ms (Redis TIME).
pub const EXPIRY_KEY: &str = "polyshop:registry:expiry";
/// The heartbeat period; the script gives each beat 6 s, so two lost beats still leave the
/// entry live.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// services/contracts/registry.lua.
pub const SCRIPT: &str = include_str!("../../../contracts/registry.lua");

// Each Redis call (and the connect) is bounded: a beat must not pile up behind a Redis that
// is away, and shutdown must not hang on one.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

static LUA: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT));

/// One instance as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Service name (`pricing`).
    pub name: String,
    /// 16 random hex characters, new per process.
    pub instance_id: String,
    /// `ADVERTISE_URL`.
    pub url: String,
    /// `rust`, `go` or `python`.
    pub language: String,
    /// The service's package version.
    pub version: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// The inventory shard id; `None` (JSON null) for every other service.
    pub shard: Option<String>,
}

impl Entry {
    /// This process's entry, started now, with a fresh instance id.
    pub fn new(name: &str, language: &str, version: &str, url: &str) -> Self {
        Self {
            name: name.to_owned(),
            instance_id: new_instance_id(),
            url: url.to_owned(),
            language: language.to_owned(),
            version: version.to_owned(),
            started_at: crate::telemetry::rfc3339_millis(SystemTime::now()),
            shard: None,
        }
    }

    /// The hash field and sorted-set member: `{name}/{instance_id}`.
    pub fn field(&self) -> String {
        format!("{}/{}", self.name, self.instance_id)
    }
}

/// 16 random hex characters: a restarted process never shares a field with its
/// predecessor, whose late deregistration would otherwise remove the new entry.
pub fn new_instance_id() -> String {
    rand::random::<[u8; 8]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Connects to the registry's Redis with bounded timeouts; the manager reconnects by itself.
pub async fn connect(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1);
    bounded(client.get_connection_manager_with_config(cfg)).await
}

async fn bounded<T>(call: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    tokio::time::timeout(CALL_TIMEOUT * 2, call)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
}

/// Registers or refreshes `entry`; answers its expiry (Unix ms, Redis clock).
pub async fn beat(conn: &mut ConnectionManager, entry: &Entry) -> redis::RedisResult<i64> {
    let value = serde_json::to_string(entry)
        .map_err(|e| redis::RedisError::from((redis::ErrorKind::Client, "entry", e.to_string())))?;
    bounded(
        LUA.key(HASH_KEY)
            .key(EXPIRY_KEY)
            .arg("beat")
            .arg(entry.field())
            .arg(value)
            .invoke_async(conn),
    )
    .await
}

/// Removes `entry` from both keys.
pub async fn deregister(conn: &mut ConnectionManager, entry: &Entry) -> redis::RedisResult<()> {
    bounded(
        LUA.key(HASH_KEY)
            .key(EXPIRY_KEY)
            .arg("drop")
            .arg(entry.field())
            .invoke_async::<i64>(conn),
    )
    .await
    .map(drop)
}

/// Redis's clock (Unix ms) and the live entries (expiry after it), sorted by name, then
/// instance id. A value that is not an entry is skipped.
pub async fn list(conn: &mut ConnectionManager) -> redis::RedisResult<(i64, Vec<Entry>)> {
    let reply: Vec<redis::Value> = bounded(
        LUA.key(HASH_KEY)
            .key(EXPIRY_KEY)
            .arg("list")
            .invoke_async(conn),
    )
    .await?;
    let mut values = reply.into_iter();
    let now = match values.next() {
        Some(redis::Value::Int(now)) => now,
        _ => {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "registry list: no clock",
            )));
        }
    };
    let mut entries: Vec<Entry> = values
        .filter_map(|v| match v {
            redis::Value::BulkString(b) => serde_json::from_slice(&b).ok(),
            _ => None,
        })
        .collect();
    entries.sort_by(|a, b| (&a.name, &a.instance_id).cmp(&(&b.name, &b.instance_id)));
    Ok((now, entries))
}

/// The running heartbeat of one entry; [`Heartbeat::stop`] ends it and deregisters.
pub struct Heartbeat {
    running: Option<(oneshot::Sender<()>, JoinHandle<Option<ConnectionManager>>)>,
    client: Option<redis::Client>,
    entry: Entry,
}

impl Heartbeat {
    /// Starts beating `entry` into the registry `common` names (`REGISTRY_URL`, else
    /// `REDIS_URL`); with neither, an inert heartbeat: no Redis, no registration.
    pub fn start(common: &CommonConfig, entry: Entry) -> Self {
        let client = common
            .registry_redis_url()
            .and_then(|url| match redis::Client::open(url) {
                Ok(c) => Some(c),
                Err(err) => {
                    tracing::error!(error = %err, "registry disabled");
                    None
                }
            });
        Self::start_with(client, entry, INTERVAL)
    }

    /// [`Heartbeat::start`] with the client and period given (tests beat faster).
    pub fn start_with(client: Option<redis::Client>, entry: Entry, interval: Duration) -> Self {
        let running = client.clone().map(|client| {
            tracing::info!(field = %entry.field(), url = %entry.url, "registry");
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(run(client, entry.clone(), interval, stopped));
            (stop, task)
        });
        Self {
            running,
            client,
            entry,
        }
    }

    /// What this heartbeat registers.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Stops the beats, then deregisters (bounded: a Redis that is away costs at most a
    /// few seconds of the shutdown, and the entry then expires by itself).
    pub async fn stop(mut self) {
        let Some((stop, task)) = self.running.take() else {
            return;
        };
        let _ = stop.send(());
        // The loop only stops between beats, so no beat lands after the deregistration.
        let conn = task.await.ok().flatten();
        let conn = match (conn, &self.client) {
            (Some(c), _) => Some(c),
            (None, Some(client)) => connect(client).await.ok(),
            (None, None) => None,
        };
        let result = match conn {
            Some(mut c) => deregister(&mut c, &self.entry).await,
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected).into()),
        };
        match result {
            Ok(()) => tracing::info!(field = %self.entry.field(), "deregistered"),
            Err(err) => tracing::warn!(error = %err, "registry deregister failed"),
        }
    }
}

impl Drop for Heartbeat {
    // Dropped without stop (a failed start): the beats end and the entry expires by itself.
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            let _ = stop.send(());
        }
    }
}

async fn run(
    client: redis::Client,
    entry: Entry,
    interval: Duration,
    mut stopped: oneshot::Receiver<()>,
) -> Option<ConnectionManager> {
    let mut conn: Option<ConnectionManager> = None;
    let mut failing = false;
    loop {
        if conn.is_none() {
            conn = connect(&client).await.ok();
        }
        let result = match conn.as_mut() {
            Some(c) => beat(c, &entry).await.map(drop),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected).into()),
        };
        if result.is_err() {
            // The next beat gets a fresh manager: redis-rs reconnects only on errors it reads
            // as a dropped connection, so one whose peer vanished without a FIN (a deleted
            // pod's IP) would time out on every beat for ever.
            conn = None;
        }
        match result {
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, field = %entry.field(), "registry heartbeat failed");
            }
            Ok(()) if failing => {
                failing = false;
                tracing::info!(field = %entry.field(), "registry heartbeat restored");
            }
            _ => {}
        }
        tokio::select! {
            _ = &mut stopped => return conn,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
