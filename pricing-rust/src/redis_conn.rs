//! A Redis connection that heals itself when its peer vanishes without a word.
//!
//! `ConnectionManager` reconnects only on errors it reads as a dropped connection (reset,
//! broken pipe, EOF). When the peer's IP black-holes packets (a deleted Redis pod: same
//! Service IP, new pod IP, no FIN or RST ever arrives) every command only times out, a
//! timeout is "retry on the same connection", and the manager never reconnects: pricing
//! stayed NotReady for minutes while the gateway and inventory had recovered. So a
//! watchdog PINGs the current manager and, after consecutive timeouts, swaps in a new one
//! built from the client; callers take [`RedisConn::conn`] per operation to pick it up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long connecting may take (per attempt of the manager).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the watchdog PINGs.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_secs(2);
/// Consecutive PING timeouts before the manager is replaced: one can be a slow moment
/// (a big HSCAN page ahead of it, a BLOCK read on the consumer's connection).
pub const TIMEOUTS_BEFORE_REPLACE: u32 = 2;

/// Cheap-to-clone handle on the current connection manager of one Redis connection.
#[derive(Clone)]
pub struct RedisConn {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    config: ConnectionManagerConfig,
    response_timeout: Duration,
    current: RwLock<ConnectionManager>,
    replacements: AtomicU64,
    watchdog: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.get() {
            w.abort();
        }
    }
}

impl RedisConn {
    /// Connects a manager (connection timeout 1 s, the given response timeout) and starts
    /// its watchdog, which lives as long as a clone of this handle does.
    pub async fn connect(
        client: &redis::Client,
        response_timeout: Duration,
    ) -> redis::RedisResult<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2);
        let first = client
            .get_connection_manager_with_config(config.clone())
            .await?;
        let shared = Arc::new(Shared {
            client: client.clone(),
            config,
            response_timeout,
            current: RwLock::new(first),
            replacements: AtomicU64::new(0),
            watchdog: OnceLock::new(),
        });
        let task = tokio::spawn(watchdog(Arc::downgrade(&shared)));
        let _ = shared.watchdog.set(task.abort_handle());
        Ok(Self { shared })
    }

    /// The current manager; take one per operation so a replacement is picked up.
    pub fn conn(&self) -> ConnectionManager {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times the manager was replaced.
    pub fn replacements(&self) -> u64 {
        self.shared.replacements.load(Ordering::Relaxed)
    }
}

impl Shared {
    async fn replace(&self) -> redis::RedisResult<()> {
        let fresh = self
            .client
            .get_connection_manager_with_config(self.config.clone())
            .await?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.replacements.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

// Holds only a Weak between rounds, so dropping the last handle ends it even where the
// abort in `Drop` could not run first.
async fn watchdog(shared: Weak<Shared>) {
    let mut timeouts = 0u32;
    let mut tick = tokio::time::interval(WATCHDOG_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        let mut c = s.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        // The manager's response timeout should end the PING; the outer bound is for a
        // manager stuck elsewhere (a reconnect that never settles).
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut c);
        let unhealthy =
            match tokio::time::timeout(s.response_timeout + CONNECTION_TIMEOUT * 2, ping).await {
                Ok(Ok(_)) => false,
                // A timeout, or an answer that is not a PONG (a connection out of step with
                // its replies: seen after a Redis pod was replaced, every command then failed
                // to parse). The manager reconnects on neither.
                Ok(Err(e)) => e.is_timeout() || !e.is_io_error(),
                Err(_) => true,
            };
        drop(c);
        if !unhealthy {
            // Success, or an I/O error the manager does act on (refused, reset): its own
            // reconnect handles those.
            timeouts = 0;
            continue;
        }
        timeouts += 1;
        if timeouts < TIMEOUTS_BEFORE_REPLACE {
            continue;
        }
        match s.replace().await {
            Ok(()) => {
                timeouts = 0;
                tracing::warn!(
                    consecutive_timeouts = TIMEOUTS_BEFORE_REPLACE,
                    "redis connection replaced"
                );
            }
            // Kept at the threshold: the next timed-out PING tries again.
            Err(err) => tracing::warn!(error = %err, "redis connection replacement failed"),
        }
    }
}
