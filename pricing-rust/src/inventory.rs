//! Pricing's calls to inventory through svc-client (one `Upstream` per shard, picked by
//! consistent hash over `INVENTORY_URLS` or over the ring record's members), the 421
//! handling of ring.md, and the one place where client errors become `ApiError`s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use svc_client::{
    CallContext, ClientError, ClientMetrics, ShardRing, StatusCode, Upstream, UpstreamConfig,
};
use svc_kit::registry;
use svc_kit::{ApiError, RequestContext};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::shards::{self, Record, View};

/// One product's stock as inventory answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct InventoryItem {
    /// Product id.
    pub product_id: u64,
    /// Free units (held units excluded).
    pub available: u64,
    /// Warehouse id (`WH-4`).
    pub warehouse: String,
    /// RFC 3339 time of the last stock change.
    pub last_updated: String,
    /// Units reserved in the last hour.
    #[serde(default)]
    pub recent_demand: u64,
}

#[derive(Deserialize)]
struct BatchAnswer {
    items: Vec<InventoryItem>,
    #[serde(default)]
    not_found: Vec<u64>,
}

#[derive(Serialize)]
struct BatchQuery<'a> {
    ids: &'a [u64],
}

/// The header naming a product's owner on an inventory shard's 421 (errors.md).
const SHARD_OWNER: &str = "x-shard-owner";

/// The inventory upstream(s): static over `INVENTORY_URLS`, or, once
/// [`Inventory::follow_registry`] finds a ring record, over the record's members at their
/// registered URLs (ring.md, "Routers"). Cheap to clone; clones share the view.
#[derive(Clone)]
pub struct Inventory {
    shared: Arc<Shared>,
}

struct Shared {
    // Swapped whole by a refresh, so a request routes on one consistent snapshot.
    routes: RwLock<Arc<Routes>>,
    // The routes of `INVENTORY_URLS`: used while there is no ring record.
    fixed: Arc<Routes>,
    config: UpstreamConfig,
    metrics: ClientMetrics,
    // Held through a whole refresh: concurrent 421s and the periodic task share one.
    source: tokio::sync::Mutex<Source>,
    // Refreshes started so far; a 421 needs one that started after it arrived.
    refreshes: AtomicU64,
    watch: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

#[derive(Default)]
struct Source {
    client: Option<redis::Client>,
    conn: Option<ConnectionManager>,
    failing: bool,
}

/// One snapshot of the routing: the ring over the shard names and each name's upstream.
struct Routes {
    ring: ShardRing,
    // A ring name with no entry here is down.
    shards: HashMap<String, Shard>,
    // `Some` in registry mode.
    epoch: Option<u64>,
}

struct Shard {
    // As configured or registered: a change of either makes a new upstream.
    url: String,
    instance: Option<String>,
    upstream: Upstream,
}

impl Routes {
    fn owner(&self, product_id: u64) -> Result<&str, ApiError> {
        self.ring
            .shard_for_product(product_id)
            .ok_or_else(|| ApiError::internal("no inventory shard configured"))
    }

    fn upstream(&self, shard: &str) -> Result<&Upstream, ApiError> {
        self.shards
            .get(shard)
            .map(|s| &s.upstream)
            .ok_or_else(|| unavailable(format!("inventory shard {shard:?} has no live instance")))
    }

    // The same members at the same URLs (the epoch alone does not change a route).
    fn same_as(&self, other: &Routes) -> bool {
        self.epoch.is_some() == other.epoch.is_some()
            && self.ring.shards() == other.ring.shards()
            && self.shards.len() == other.shards.len()
            && self.shards.iter().all(|(k, s)| {
                other
                    .shards
                    .get(k)
                    .is_some_and(|o| o.url == s.url && o.instance == s.instance)
            })
    }
}

impl Inventory {
    /// One upstream per base URL; with several, products are routed by consistent hash.
    pub fn new(
        bases: &[String],
        config: &UpstreamConfig,
        metrics: &ClientMetrics,
    ) -> Result<Self, svc_client::BuildError> {
        // One breaker per shard, named apart so their gauges do not overwrite each other
        // (env.md: `inventory`, or `inventory-<index>` with several shards).
        let name = |i: usize| {
            if bases.len() == 1 {
                "inventory".to_owned()
            } else {
                format!("inventory-{i}")
            }
        };
        let mut shards = HashMap::new();
        for (i, b) in bases.iter().enumerate() {
            let upstream = Upstream::new(&name(i), b, config, metrics)?;
            // The ring hashes the entries as configured, not the client's normalised URL,
            // so pricing and the gateway agree on every product's shard.
            let url = b.trim().to_owned();
            shards.insert(
                url.clone(),
                Shard {
                    url,
                    instance: None,
                    upstream,
                },
            );
        }
        let fixed = Arc::new(Routes {
            ring: ShardRing::new(bases.iter().map(|b| b.trim())),
            shards,
            epoch: None,
        });
        Ok(Self {
            shared: Arc::new(Shared {
                routes: RwLock::new(fixed.clone()),
                fixed,
                config: config.clone(),
                metrics: metrics.clone(),
                source: tokio::sync::Mutex::new(Source::default()),
                refreshes: AtomicU64::new(0),
                watch: Mutex::new(None),
            }),
        })
    }

    /// Reads the ring record and the registry from `client` now, then every `every` in a
    /// task of its own until [`Inventory::stop`]; a 421 reads them again at once.
    pub async fn follow_registry(&self, client: redis::Client, every: Duration) {
        self.shared.source.lock().await.client = Some(client);
        self.refresh().await;
        let (stop, stopped) = oneshot::channel();
        // Weak: the task must not keep the inventory (and so its own stop sender) alive.
        let task = tokio::spawn(follow(Arc::downgrade(&self.shared), every, stopped));
        let previous = lock(&self.shared.watch).replace((stop, task));
        if let Some((stop, _)) = previous {
            let _ = stop.send(());
        }
    }

    /// Ends the periodic refresh (the view stays as it is; a 421 still refreshes it).
    pub async fn stop(&self) {
        let running = lock(&self.shared.watch).take();
        if let Some((stop, task)) = running {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Whether routing follows a ring record (`true`) or `INVENTORY_URLS`.
    pub fn registry_mode(&self) -> bool {
        self.routes().epoch.is_some()
    }

    fn routes(&self) -> Arc<Routes> {
        self.shared
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the record and the registry again now; a failed read keeps the view.
    pub async fn refresh(&self) {
        let mut source = self.shared.source.lock().await;
        self.refresh_locked(&mut source).await;
    }

    /// The view after a 421: `seen` is the count of refreshes started when the 421
    /// arrived; a refresh started since then is fresh enough, so concurrent 421s wait for
    /// one refresh instead of each making their own.
    async fn refreshed_since(&self, seen: u64) -> Arc<Routes> {
        let mut source = self.shared.source.lock().await;
        if self.shared.refreshes.load(Ordering::Acquire) == seen {
            self.refresh_locked(&mut source).await;
        }
        self.routes()
    }

    async fn refresh_locked(&self, source: &mut Source) {
        self.shared.refreshes.fetch_add(1, Ordering::AcqRel);
        let Some(client) = source.client.clone() else {
            return; // no registry: INVENTORY_URLS for the life of the process
        };
        if source.conn.is_none() {
            match registry::connect(&client).await {
                Ok(conn) => source.conn = Some(conn),
                Err(err) => {
                    source.failed(&err);
                    return;
                }
            }
        }
        let Some(conn) = source.conn.as_mut() else {
            return;
        };
        let read = shards::read(conn).await;
        if read.is_err() {
            // A fresh manager next time: one whose peer vanished without a FIN would time
            // out for ever (redis-rs reconnects only on errors it reads as a dropped link).
            source.conn = None;
        }
        match read {
            Ok(found) => {
                if source.failing {
                    source.failing = false;
                    tracing::info!("inventory ring record readable again");
                }
                let routes = match found {
                    Some((record, view)) => Arc::new(self.registry_routes(&record, &view)),
                    None => self.shared.fixed.clone(),
                };
                self.install(routes);
            }
            Err(err) => source.failed(&err),
        }
    }

    // Keeps the upstream (pool, breaker) of every member whose instance stayed the same: a
    // restarted shard gets a closed breaker, not the one its dead predecessor opened.
    fn registry_routes(&self, record: &Record, view: &View) -> Routes {
        let current = self.routes();
        let mut shards = HashMap::new();
        // Members first, then live shards the record does not name yet, so a 421 naming a
        // rebalance's new shard can be followed before the record is written.
        let reachable = view
            .routes()
            .iter()
            .filter_map(|(m, url)| url.as_ref().map(|u| (m, u)))
            .chain(view.others().iter());
        for (member, url) in reachable {
            let instance = view.instance(member).map(str::to_owned);
            let kept = current
                .epoch
                .and(current.shards.get(member))
                .filter(|s| s.url == *url && s.instance == instance)
                .map(|s| s.upstream.clone());
            let upstream = match kept {
                Some(u) => u,
                None => {
                    let name = format!("inventory-{member}");
                    match Upstream::new(&name, url, &self.shared.config, &self.shared.metrics) {
                        Ok(u) => u,
                        Err(err) => {
                            // A registered URL we cannot call: the member is down.
                            tracing::warn!(%member, %url, error = %err, "inventory shard url refused");
                            continue;
                        }
                    }
                }
            };
            let url = url.clone();
            shards.insert(
                member.clone(),
                Shard {
                    url,
                    instance,
                    upstream,
                },
            );
        }
        Routes {
            ring: ShardRing::new(&record.members),
            shards,
            epoch: Some(record.epoch),
        }
    }

    fn install(&self, routes: Arc<Routes>) {
        let mut current = self
            .shared
            .routes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !current.same_as(&routes) {
            let down: Vec<&str> = routes
                .ring
                .shards()
                .iter()
                .filter(|m| !routes.shards.contains_key(*m))
                .map(String::as_str)
                .collect();
            match routes.epoch {
                Some(epoch) => tracing::info!(
                    epoch,
                    members = %routes.ring.shards().join(","),
                    down = %down.join(","),
                    "inventory routes from the ring record"
                ),
                None => tracing::info!("no inventory ring record: routing over INVENTORY_URLS"),
            }
        }
        *current = routes;
    }

    /// `GET /api/inventory/{id}`; `Ok(None)` when inventory does not know the product.
    pub async fn item(
        &self,
        product_id: u64,
        ctx: &RequestContext,
    ) -> Result<Option<InventoryItem>, ApiError> {
        let path = format!("/api/inventory/{product_id}");
        let call = call_context(ctx);
        let routes = self.routes();
        let upstream = routes.upstream(routes.owner(product_id)?)?;
        let mut answer = upstream.get(&path, &call).await.map_err(client_error)?;
        if answer.status == StatusCode::MISDIRECTED_REQUEST {
            let seen = self.shared.refreshes.load(Ordering::Acquire);
            let owner = answer.header(SHARD_OWNER).map(str::to_owned);
            let routes = self.refreshed_since(seen).await;
            let owner = owner.ok_or_else(|| unavailable("421 without X-Shard-Owner".into()))?;
            answer = routes
                .upstream(&owner)?
                .get(&path, &call)
                .await
                .map_err(client_error)?;
            if answer.status == StatusCode::MISDIRECTED_REQUEST {
                return Err(unavailable(format!(
                    "product {product_id} misdirected again at {owner:?}"
                )));
            }
        }
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => answer.json().map(Some).map_err(client_error),
            s => Err(unexpected(s)),
        }
    }

    /// `POST /api/inventory/batch` (one call per shard); returns the items and the unknown
    /// ids. The groups a shard answers 421 are split again over the refreshed view and
    /// sent once more.
    pub async fn batch(
        &self,
        ids: &[u64],
        ctx: &RequestContext,
    ) -> Result<(Vec<InventoryItem>, Vec<u64>), ApiError> {
        let call = call_context(ctx);
        let mut found = (Vec::with_capacity(ids.len()), Vec::new());
        let misdirected = batch_round(&self.routes(), ids, &call, &mut found).await?;
        if misdirected.is_empty() {
            return Ok(found);
        }
        let seen = self.shared.refreshes.load(Ordering::Acquire);
        let routes = self.refreshed_since(seen).await;
        let again = batch_round(&routes, &misdirected, &call, &mut found).await?;
        if !again.is_empty() {
            return Err(unavailable(format!(
                "{} products misdirected again",
                again.len()
            )));
        }
        Ok(found)
    }
}

/// Sends `ids` grouped by owner, one call per shard, adding the answers to `found`;
/// returns the ids of the groups answered 421.
async fn batch_round(
    routes: &Routes,
    ids: &[u64],
    call: &CallContext,
    found: &mut (Vec<InventoryItem>, Vec<u64>),
) -> Result<Vec<u64>, ApiError> {
    let mut groups: Vec<(&str, Vec<u64>)> = Vec::new();
    for &id in ids {
        let owner = routes.owner(id)?;
        match groups.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, g)) => g.push(id),
            None => groups.push((owner, vec![id])),
        }
    }
    // Every owner must be up before any call: a batch with a down shard fails as a whole.
    let upstreams = groups
        .iter()
        .map(|(owner, _)| routes.upstream(owner))
        .collect::<Result<Vec<_>, _>>()?;
    let calls = groups
        .iter()
        .zip(upstreams)
        .map(|((_, group), upstream)| async move {
            let query = BatchQuery { ids: group };
            upstream
                .post_json("/api/inventory/batch", &query, call, true)
                .await
        });
    let answers = futures_util::future::join_all(calls).await;
    let mut misdirected = Vec::new();
    for ((_, group), answer) in groups.iter().zip(answers) {
        let answer = answer.map_err(client_error)?;
        if answer.status == StatusCode::MISDIRECTED_REQUEST {
            misdirected.extend_from_slice(group);
            continue;
        }
        if !answer.status.is_success() {
            return Err(unexpected(answer.status));
        }
        let batch: BatchAnswer = answer.json().map_err(client_error)?;
        found.0.extend(batch.items);
        found.1.extend(batch.not_found);
    }
    Ok(misdirected)
}

async fn follow(shared: Weak<Shared>, every: Duration, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let inventory = Inventory { shared };
        tokio::select! {
            _ = &mut stopped => return,
            () = inventory.refresh() => {}
        }
    }
}

impl Source {
    fn failed(&mut self, err: &dyn std::fmt::Display) {
        if !self.failing {
            self.failing = true;
            tracing::warn!(error = %err, "inventory ring refresh failed; keeping the last view");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Calls made while serving a request are inner hops: no retries (env.md).
fn call_context(ctx: &RequestContext) -> CallContext {
    CallContext {
        request_id: ctx.request_id.to_string(),
        traceparent: Some(ctx.traceparent()),
        deadline: ctx.deadline,
        inner_hop: true,
    }
}

/// The one mapping of svc-client errors to the shared error codes.
pub fn client_error(err: ClientError) -> ApiError {
    let retry_after = err.retry_after_secs().unwrap_or(1);
    match err {
        ClientError::DeadlineExceeded => ApiError::DeadlineExceeded,
        ClientError::Unavailable { cause, .. } => ApiError::UpstreamUnavailable {
            upstream: "inventory",
            retry_after,
            cause: cause.to_string(),
        },
        ClientError::BreakerOpen { .. } => ApiError::UpstreamUnavailable {
            upstream: "inventory",
            retry_after,
            cause: "breaker open".to_owned(),
        },
        ClientError::InvalidResponse(e) => ApiError::UpstreamUnavailable {
            upstream: "inventory",
            retry_after: 1,
            cause: format!("invalid answer: {e}"),
        },
        other @ ClientError::InvalidRequest(_) => ApiError::internal(other),
    }
}

fn unexpected(status: StatusCode) -> ApiError {
    unavailable(format!("unexpected status {status}"))
}

/// Inventory cannot serve this call (a shard down, a status we cannot use, an owner
/// nobody answers for): 503 `upstream_unavailable`, the cause only in the log.
fn unavailable(cause: String) -> ApiError {
    ApiError::UpstreamUnavailable {
        upstream: "inventory",
        retry_after: 1,
        cause,
    }
}
