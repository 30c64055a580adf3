//! polyshop's pricing engine: the HTTP API (`app`), its state, and `start`, which wires
//! config to stores (memory or Redis), the demand consumer and the inventory client.

pub mod book;
pub mod config;
pub mod demand;
pub mod inventory;
pub mod pricing;
pub mod redis_conn;
pub mod routes;
pub mod shards;
pub mod stats;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use svc_kit::{AdminToken, Kit, Readiness};

pub use config::Config;

use book::PriceBook;
use demand::DemandReader;
use inventory::Inventory;
use redis_conn::RedisConn;
use stats::Stats;

/// Service name in logs and `/health`.
pub const SERVICE: &str = "pricing";

/// What handlers share.
pub struct Inner {
    /// Registry, HTTP metrics and request knobs.
    pub kit: Arc<Kit>,
    /// Base prices.
    pub book: Arc<PriceBook>,
    /// Recent demand when a caller omits it.
    pub demand: DemandReader,
    /// Live counters and business metrics.
    pub stats: Stats,
    /// The inventory upstream(s).
    pub inventory: Inventory,
    /// `ADMIN_TOKEN`.
    pub admin: AdminToken,
}

/// Cheap-to-clone handle on [`Inner`].
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for AdminToken {
    fn from_ref(state: &AppState) -> AdminToken {
        state.admin.clone()
    }
}

impl AppState {
    /// Assembles the state; registers the pricing and client metrics in the kit's registry.
    pub fn new(
        kit: Arc<Kit>,
        book: Arc<PriceBook>,
        demand: DemandReader,
        inventory_bases: &[String],
        upstream: &svc_client::UpstreamConfig,
        admin_token: Option<String>,
    ) -> Result<Self, String> {
        let stats = Stats::register(&kit.registry).map_err(|e| e.to_string())?;
        let client_metrics =
            svc_client::ClientMetrics::register(&kit.registry).map_err(|e| e.to_string())?;
        let inventory = Inventory::new(inventory_bases, upstream, &client_metrics)
            .map_err(|e| e.to_string())?;
        Ok(Self(Arc::new(Inner {
            kit,
            book,
            demand,
            stats,
            inventory,
            admin: AdminToken(admin_token.map(Arc::from)),
        })))
    }
}

/// The whole router: the API plus svc-kit's health routes, fallbacks and middleware.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/api/calculate_price",
            post(routes::calculate::calculate_price),
        )
        .route(
            "/api/calculate_prices",
            post(routes::calculate::calculate_prices),
        )
        .route("/api/stats", get(routes::stats::stats_get))
        .route("/api/prices", get(routes::prices::prices_list))
        .route(
            "/api/prices/{id}",
            get(routes::prices::prices_get).put(routes::prices::prices_put),
        )
        .with_state(state.clone());
    // Only the service's own store decides readiness (never inventory: docs/DESIGN.md, Health).
    let mut readiness = Readiness::new();
    if state.book.is_redis() {
        let book = state.book.clone();
        readiness = readiness.check("redis", move || {
            let book = book.clone();
            async move { book.ping().await }
        });
    }
    svc_kit::router(api, state.kit.clone(), readiness)
}

/// This process's entry in the service registry (services/contracts/ring.md).
pub fn registry_entry(cfg: &Config) -> svc_kit::registry::Entry {
    svc_kit::registry::Entry::new(
        SERVICE,
        "rust",
        env!("CARGO_PKG_VERSION"),
        &cfg.common.advertise_url,
    )
}

/// Connects a self-healing connection (see [`redis_conn`]): connection timeout 1 s, the
/// given response timeout.
pub async fn connect_redis(
    client: &redis::Client,
    response_timeout: Duration,
) -> redis::RedisResult<RedisConn> {
    RedisConn::connect(client, response_timeout).await
}

// Redis may still be starting next to us (compose, k8s): retry for about 10 s, then give up
// and let the supervisor restart the process.
async fn connect_with_retries(
    client: &redis::Client,
    response_timeout: Duration,
) -> Result<RedisConn, String> {
    let mut attempt = 0;
    loop {
        match connect_redis(client, response_timeout).await {
            Ok(conn) => return Ok(conn),
            Err(err) if attempt < 10 => {
                attempt += 1;
                tracing::warn!(error = %err, attempt, "redis not reachable yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => return Err(format!("redis: {err}")),
        }
    }
}

/// Builds the state from config: loads the catalog, connects Redis when configured (seeds
/// the book, starts the invalidation listener and the demand consumer) and, with a
/// registry, starts following the inventory ring record (stop it with
/// [`Inventory::stop`]).
pub async fn start(cfg: &Config) -> Result<AppState, String> {
    let kit =
        Kit::new(SERVICE, env!("CARGO_PKG_VERSION"), &cfg.common).map_err(|e| e.to_string())?;
    let (path, catalog) = book::load_catalog()?;
    tracing::info!(path = %path.display(), products = catalog.len(), "catalog loaded");
    let (book, demand) = match &cfg.common.redis_url {
        None => (Arc::new(PriceBook::memory(catalog)), DemandReader::memory()),
        Some(url) => {
            let client =
                redis::Client::open(url.as_str()).map_err(|e| format!("REDIS_URL: {e}"))?;
            let conn = connect_with_retries(&client, Duration::from_secs(1)).await?;
            let book = Arc::new(
                PriceBook::redis(conn.clone(), &catalog)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            book::spawn_invalidation_listener(book.clone(), client.clone());
            let consumer_conn = connect_with_retries(&client, Duration::from_secs(5)).await?;
            tokio::spawn(
                demand::Consumer::new(consumer_conn, cfg.common.instance_id.clone()).run(),
            );
            (book, DemandReader::redis(conn))
        }
    };
    let state = AppState::new(
        kit,
        book,
        demand,
        &cfg.inventory_bases(),
        &cfg.upstream,
        cfg.common.admin_token.clone(),
    )?;
    // With a registry, the ring record (when there is one) decides where products go.
    if let Some(url) = cfg.common.registry_redis_url() {
        let client = redis::Client::open(url).map_err(|e| format!("REGISTRY_URL: {e}"))?;
        state
            .inventory
            .follow_registry(client, shards::REFRESH_INTERVAL)
            .await;
    }
    Ok(state)
}
