//! Environment configuration (services/contracts/env.md): typed parsing with defaults and
//! bounds, the knobs every service reads, the prod checks, and the masked view that is
//! logged once at start. A bad value is a `ConfigError` (one line); `or_exit` prints it and
//! exits 2, so only `main` ever exits.

use std::fmt;

use svc_wire::env;

/// A bad configuration value: the variable and what is wrong, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config: {var}: {message}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `var`.
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// Returns the value, or prints the one-line error on stderr and exits with code 2.
pub fn or_exit<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(v) => v,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    }
}

/// Reads variables through a lookup function (the process env in services, a map in tests).
pub struct Vars<F> {
    lookup: F,
}

/// Variables of the real process environment.
pub fn process_env() -> Vars<fn(&str) -> Option<String>> {
    Vars::new(|name| std::env::var(name).ok())
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// Wraps a lookup function.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The value trimmed of ASCII whitespace; an empty or all-blank value counts as unset.
    pub fn get(&self, name: &'static str) -> Option<String> {
        env::trimmed((self.lookup)(name).as_deref()).map(str::to_owned)
    }

    /// The value through one of svc-wire's env rules (`None` when unset); a refusal names
    /// the variable.
    pub fn parse<T>(
        &self,
        name: &'static str,
        rule: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|v| rule(&v).map_err(|why| ConfigError::new(name, why)))
            .transpose()
    }

    /// An integer (ASCII digits only) within `min..=max`, `default` when unset.
    pub fn int(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        Ok(self
            .parse(name, |v| env::uint(v, min, max))?
            .unwrap_or(default))
    }

    /// A number (digits, at most one `.`) within `min..=max`, `default` when unset.
    pub fn number(
        &self,
        name: &'static str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        Ok(self
            .parse(name, |v| env::number(v, min, max))?
            .unwrap_or(default))
    }

    /// One of `allowed` (case-insensitive), `default` when unset.
    pub fn one_of(
        &self,
        name: &'static str,
        default: &'static str,
        allowed: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        Ok(self
            .parse(name, |v| env::one_of(v, allowed))?
            .unwrap_or(default))
    }

    /// An `http://` base URL, `default` when unset; trailing slashes are dropped.
    pub fn url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self
            .parse(name, env::http_url)?
            .unwrap_or_else(|| default.to_owned()))
    }

    /// A comma list of `http://` URLs (shard names, kept as written); `None` when unset or
    /// when no entry is left after dropping empty ones.
    pub fn url_list(&self, name: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        Ok(self.parse(name, env::http_url_list)?.flatten())
    }
}

/// `dev` or `prod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Development and tests: fault knobs allowed.
    Dev,
    /// Production: fault knobs refused, `ADMIN_TOKEN` required.
    Prod,
}

/// The knobs every service reads.
#[derive(Clone, PartialEq)]
pub struct CommonConfig {
    /// `PORT`.
    pub port: u16,
    /// `POLYSHOP_ENV`.
    pub env: Environment,
    /// `REDIS_URL`; `None` = in-memory store.
    pub redis_url: Option<String>,
    /// `LOG_LEVEL`: debug, info, warn or error.
    pub log_level: &'static str,
    /// `ADMIN_TOKEN`; `None` = admin routes answer 404.
    pub admin_token: Option<String>,
    /// `MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `FAULT_DELAY_MS`.
    pub fault_delay_ms: u64,
    /// `FAULT_ERROR_RATE`.
    pub fault_error_rate: f64,
    /// `INSTANCE_ID`.
    pub instance_id: String,
    /// `ADVERTISE_URL`: the URL written in the registry; default `http://127.0.0.1:<PORT>`.
    pub advertise_url: String,
    /// `REGISTRY_URL` as set; `None` = the registry lives in `REDIS_URL`'s Redis.
    pub registry_url: Option<String>,
}

impl CommonConfig {
    /// The variable names this struct reads, in README order.
    pub const VARS: [&'static str; 11] = [
        "PORT",
        "POLYSHOP_ENV",
        "REDIS_URL",
        "LOG_LEVEL",
        "ADMIN_TOKEN",
        "MAX_BODY_BYTES",
        "FAULT_DELAY_MS",
        "FAULT_ERROR_RATE",
        "INSTANCE_ID",
        "ADVERTISE_URL",
        "REGISTRY_URL",
    ];

    /// Reads the common knobs; `default_port` is the service's own port.
    pub fn from_vars<F: Fn(&str) -> Option<String>>(
        vars: &Vars<F>,
        default_port: u16,
    ) -> Result<Self, ConfigError> {
        let env = match vars.one_of("POLYSHOP_ENV", "dev", &["dev", "prod"])? {
            "prod" => Environment::Prod,
            _ => Environment::Dev,
        };
        let port = vars.int("PORT", default_port.into(), 1, 65535)? as u16;
        let cfg = Self {
            port,
            env,
            redis_url: vars.parse("REDIS_URL", env::redis_url)?,
            log_level: vars.one_of("LOG_LEVEL", "info", &["debug", "info", "warn", "error"])?,
            admin_token: vars.parse("ADMIN_TOKEN", env::secret)?,
            max_body_bytes: vars.int("MAX_BODY_BYTES", 65536, 1, 64 * 1024 * 1024)? as usize,
            fault_delay_ms: vars.int("FAULT_DELAY_MS", 0, 0, 60_000)?,
            fault_error_rate: vars.number("FAULT_ERROR_RATE", 0.0, 0.0, 1.0)?,
            instance_id: vars
                .parse("INSTANCE_ID", env::instance_id)?
                .unwrap_or_else(default_instance_id),
            advertise_url: vars.url("ADVERTISE_URL", &format!("http://127.0.0.1:{port}"))?,
            registry_url: vars.parse("REGISTRY_URL", env::redis_url)?,
        };
        cfg.check_prod()?;
        Ok(cfg)
    }

    /// The Redis the registry lives in: `REGISTRY_URL`, else `REDIS_URL`; `None` = this
    /// instance does not register.
    pub fn registry_redis_url(&self) -> Option<&str> {
        self.registry_url.as_deref().or(self.redis_url.as_deref())
    }

    fn check_prod(&self) -> Result<(), ConfigError> {
        if self.env != Environment::Prod {
            return Ok(());
        }
        if self.fault_delay_ms != 0 {
            return Err(ConfigError::new(
                "FAULT_DELAY_MS",
                "must be 0 when POLYSHOP_ENV=prod",
            ));
        }
        if self.fault_error_rate != 0.0 {
            return Err(ConfigError::new(
                "FAULT_ERROR_RATE",
                "must be 0 when POLYSHOP_ENV=prod",
            ));
        }
        if self.admin_token.is_none() {
            return Err(ConfigError::new(
                "ADMIN_TOKEN",
                "must be set when POLYSHOP_ENV=prod",
            ));
        }
        Ok(())
    }

    /// The effective values as logged, secrets masked (`ADMIN_TOKEN`, the REDIS_URL password).
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PORT", self.port.to_string()),
            (
                "POLYSHOP_ENV",
                match self.env {
                    Environment::Dev => "dev".to_owned(),
                    Environment::Prod => "prod".to_owned(),
                },
            ),
            (
                "REDIS_URL",
                self.redis_url
                    .as_deref()
                    .map_or_else(|| "unset".to_owned(), mask_url_password),
            ),
            ("LOG_LEVEL", self.log_level.to_owned()),
            (
                "ADMIN_TOKEN",
                if self.admin_token.is_some() {
                    "***"
                } else {
                    "unset"
                }
                .to_owned(),
            ),
            ("MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("FAULT_DELAY_MS", self.fault_delay_ms.to_string()),
            ("FAULT_ERROR_RATE", self.fault_error_rate.to_string()),
            ("INSTANCE_ID", self.instance_id.clone()),
            ("ADVERTISE_URL", self.advertise_url.clone()),
            (
                "REGISTRY_URL",
                self.registry_url
                    .as_deref()
                    .map_or_else(|| "unset".to_owned(), mask_url_password),
            ),
        ]
    }
}

impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.effective() {
            m.entry(&k, &v);
        }
        m.finish()
    }
}

impl fmt::Display for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.effective().into_iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// `redis://user:secret@host` -> `redis://user:***@host`; URLs without a password unchanged.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://***@{host}"),
    }
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Vars::new(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_unset() {
        let cfg = CommonConfig::from_vars(&vars(&[]), 8001).expect("defaults are valid");
        assert_eq!(cfg.port, 8001);
        assert_eq!(cfg.env, Environment::Dev);
        assert_eq!(cfg.redis_url, None);
        assert_eq!(cfg.log_level, "info");
        assert_eq!(cfg.max_body_bytes, 65536);
        assert_eq!(cfg.fault_error_rate, 0.0);
        assert!(
            cfg.instance_id
                .ends_with(&format!("-{}", std::process::id()))
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, var) in [
            (vec![("PORT", "80x")], "PORT"),
            (vec![("PORT", "0")], "PORT"),
            (vec![("PORT", "70000")], "PORT"),
            (vec![("POLYSHOP_ENV", "staging")], "POLYSHOP_ENV"),
            (vec![("LOG_LEVEL", "loud")], "LOG_LEVEL"),
            (vec![("MAX_BODY_BYTES", "10ms")], "MAX_BODY_BYTES"),
            (vec![("FAULT_ERROR_RATE", "1.5")], "FAULT_ERROR_RATE"),
            (vec![("FAULT_DELAY_MS", "-1")], "FAULT_DELAY_MS"),
            (vec![("REDIS_URL", "localhost:6379")], "REDIS_URL"),
            (vec![("INSTANCE_ID", "a b")], "INSTANCE_ID"),
        ] {
            let err = CommonConfig::from_vars(&vars(&pairs), 8001).expect_err("must fail");
            assert_eq!(err.var, var);
            let line = err.to_string();
            assert!(line.contains(var) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn prod_refuses_fault_knobs_and_a_missing_admin_token() {
        let prod = [("POLYSHOP_ENV", "prod"), ("ADMIN_TOKEN", "s3cret")];
        assert!(CommonConfig::from_vars(&vars(&prod), 1).is_ok());
        let err =
            CommonConfig::from_vars(&vars(&[("POLYSHOP_ENV", "prod")]), 1).expect_err("no token");
        assert_eq!(err.var, "ADMIN_TOKEN");
        let mut with_fault = prod.to_vec();
        with_fault.push(("FAULT_ERROR_RATE", "0.1"));
        let err = CommonConfig::from_vars(&vars(&with_fault), 1).expect_err("fault in prod");
        assert_eq!(err.var, "FAULT_ERROR_RATE");
        let mut with_delay = prod.to_vec();
        with_delay.push(("FAULT_DELAY_MS", "5"));
        let err = CommonConfig::from_vars(&vars(&with_delay), 1).expect_err("delay in prod");
        assert_eq!(err.var, "FAULT_DELAY_MS");
    }

    #[test]
    fn secrets_are_masked() {
        let cfg = CommonConfig::from_vars(
            &vars(&[
                ("ADMIN_TOKEN", "tok-123"),
                ("REDIS_URL", "redis://:hunter2@db:6379/0"),
                ("REGISTRY_URL", "redis://:sesame@reg:6379/0"),
            ]),
            8001,
        )
        .expect("valid");
        let shown = cfg.to_string();
        assert!(
            shown.contains("REGISTRY_URL=redis://:***@reg:6379/0"),
            "{shown}"
        );
        assert!(
            !shown.contains("tok-123") && !shown.contains("hunter2") && !shown.contains("sesame"),
            "{shown}"
        );
        assert!(shown.contains("ADMIN_TOKEN=***"));
        assert!(shown.contains(" REDIS_URL=redis://:***@db:6379/0"));
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert_eq!(mask_url_password("redis://db:6379/0"), "redis://db:6379/0");
        assert_eq!(mask_url_password("redis://u:p@h/1"), "redis://u:***@h/1");
    }
}
