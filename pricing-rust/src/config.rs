//! Pricing's configuration: the common knobs of svc-kit, the inventory upstream(s) and the
//! svc-client resilience knobs, all from the environment (services/contracts/env.md).

use svc_kit::config::{CommonConfig, ConfigError, Vars};

/// The default listen port of pricing.
pub const DEFAULT_PORT: u16 = 8001;

/// Everything pricing reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// PORT, POLYSHOP_ENV, REDIS_URL, LOG_LEVEL, ADMIN_TOKEN, MAX_BODY_BYTES, FAULT_*, INSTANCE_ID.
    pub common: CommonConfig,
    /// `INVENTORY_URL`.
    pub inventory_url: String,
    /// `INVENTORY_URLS` (shards, consistent hash); overrides `INVENTORY_URL` when set.
    pub inventory_shards: Option<Vec<String>>,
    /// UPSTREAM_TIMEOUT_MS, UPSTREAM_RETRIES, BREAKER_*.
    pub upstream: svc_client::UpstreamConfig,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads through `lookup` (a map in tests).
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        let common = CommonConfig::from_vars(&vars, DEFAULT_PORT)?;
        let inventory_url = vars.url("INVENTORY_URL", "http://127.0.0.1:8002")?;
        // Validated, but kept as written: the entries are the shard names the ring hashes,
        // and the gateway hashes them the same way (env.md).
        let inventory_shards = vars.url_list("INVENTORY_URLS")?;
        let upstream = svc_client::UpstreamConfig::from_env(|k| vars.get(static_name(k)?))
            .map_err(|e| ConfigError::new(e.var, e.reason))?;
        Ok(Self {
            common,
            inventory_url,
            inventory_shards,
            upstream,
        })
    }

    /// The inventory base URLs calls go to (the shards, or the one URL).
    pub fn inventory_bases(&self) -> Vec<String> {
        self.inventory_shards
            .clone()
            .unwrap_or_else(|| vec![self.inventory_url.clone()])
    }

    /// The effective configuration as logged at start (secrets masked).
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let mut out = self.common.effective();
        out.push(("INVENTORY_URL", self.inventory_url.clone()));
        out.push((
            "INVENTORY_URLS",
            self.inventory_shards
                .as_ref()
                .map_or_else(|| "unset".to_owned(), |s| s.join(",")),
        ));
        let u = &self.upstream;
        out.push(("UPSTREAM_TIMEOUT_MS", u.timeout.as_millis().to_string()));
        out.push(("UPSTREAM_RETRIES", u.retries.to_string()));
        out.push(("BREAKER_FAILURES", u.breaker_failures.to_string()));
        out.push(("BREAKER_SUCCESSES", u.breaker_successes.to_string()));
        out.push((
            "BREAKER_COOLDOWN_S",
            u.breaker_cooldown.as_secs().to_string(),
        ));
        out
    }
}

// svc-client asks by &str; svc-kit's Vars wants the 'static names it reports in errors.
fn static_name(k: &str) -> Option<&'static str> {
    svc_client::ENV_VARS
        .iter()
        .find(|v| v.name == k)
        .map(|v| v.name)
}
