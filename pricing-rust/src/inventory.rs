//! Pricing's calls to inventory through svc-client (one `Upstream` per shard, picked by
//! consistent hash), and the one place where client errors become `ApiError`s.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use svc_client::{
    CallContext, ClientError, ClientMetrics, ShardRing, StatusCode, Upstream, UpstreamConfig,
};
use svc_kit::{ApiError, RequestContext};

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

/// The inventory upstream(s).
#[derive(Clone)]
pub struct Inventory {
    shards: Vec<Upstream>,
    ring: ShardRing,
    by_base: HashMap<String, usize>,
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
        let shards = bases
            .iter()
            .enumerate()
            .map(|(i, b)| Upstream::new(&name(i), b, config, metrics))
            .collect::<Result<Vec<_>, _>>()?;
        // The ring hashes the entries as configured, not the client's normalised URL, so
        // pricing and the gateway agree on every product's shard.
        let ring = ShardRing::new(bases.iter().map(|b| b.trim()));
        let by_base = bases
            .iter()
            .enumerate()
            .map(|(i, b)| (b.trim().to_owned(), i))
            .collect();
        Ok(Self {
            shards,
            ring,
            by_base,
        })
    }

    fn shard_index(&self, product_id: u64) -> Option<usize> {
        if self.shards.len() == 1 {
            return Some(0);
        }
        let name = self.ring.shard_for_product(product_id)?;
        self.by_base.get(name).copied()
    }

    fn shard(&self, product_id: u64) -> Option<&Upstream> {
        self.shard_index(product_id)
            .and_then(|i| self.shards.get(i))
    }

    /// `GET /api/inventory/{id}`; `Ok(None)` when inventory does not know the product.
    pub async fn item(
        &self,
        product_id: u64,
        ctx: &RequestContext,
    ) -> Result<Option<InventoryItem>, ApiError> {
        let upstream = self
            .shard(product_id)
            .ok_or_else(|| ApiError::internal("no inventory shard configured"))?;
        let answer = upstream
            .get(&format!("/api/inventory/{product_id}"), &call_context(ctx))
            .await
            .map_err(client_error)?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => answer.json().map(Some).map_err(client_error),
            s => Err(unexpected(s)),
        }
    }

    /// `POST /api/inventory/batch` (per shard); returns the items and the unknown ids.
    pub async fn batch(
        &self,
        ids: &[u64],
        ctx: &RequestContext,
    ) -> Result<(Vec<InventoryItem>, Vec<u64>), ApiError> {
        let call = call_context(ctx);
        let mut groups: Vec<(usize, Vec<u64>)> = Vec::new();
        for &id in ids {
            let idx = self
                .shard_index(id)
                .ok_or_else(|| ApiError::internal("no inventory shard configured"))?;
            match groups.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, g)) => g.push(id),
                None => groups.push((idx, vec![id])),
            }
        }
        let calls = groups.iter().map(|(idx, group)| {
            let upstream = &self.shards[*idx];
            let call = &call;
            async move {
                upstream
                    .post_json(
                        "/api/inventory/batch",
                        &BatchQuery { ids: group },
                        call,
                        true,
                    )
                    .await
            }
        });
        let mut items = Vec::with_capacity(ids.len());
        let mut not_found = Vec::new();
        for answer in futures_util::future::join_all(calls).await {
            let answer = answer.map_err(client_error)?;
            if !answer.status.is_success() {
                return Err(unexpected(answer.status));
            }
            let batch: BatchAnswer = answer.json().map_err(client_error)?;
            items.extend(batch.items);
            not_found.extend(batch.not_found);
        }
        Ok((items, not_found))
    }
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
    ApiError::UpstreamUnavailable {
        upstream: "inventory",
        retry_after: 1,
        cause: format!("unexpected status {status}"),
    }
}
