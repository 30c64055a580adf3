// Owns the client's knobs: the env variables of the upstream timeout, retries and breaker,
// their defaults and bounds, and the one-line error a service turns into exit code 2.
use std::time::Duration;

/// One environment variable this crate reads: name, default and meaning.
///
/// [`ENV_VARS`] is the single list; the README table and the parser are both checked
/// against it by tests, so documentation cannot drift from code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name, e.g. `UPSTREAM_TIMEOUT_MS`.
    pub name: &'static str,
    /// Default used when the variable is unset or empty.
    pub default: &'static str,
    /// One-line meaning, as written in the README table.
    pub description: &'static str,
}

/// Every variable [`UpstreamConfig::from_env`] reads, in README order.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "UPSTREAM_TIMEOUT_MS",
        default: "1000",
        description: "timeout of one try of an upstream call, 1 .. 60000 ms (capped by the request deadline)",
    },
    EnvVar {
        name: "UPSTREAM_RETRIES",
        default: "1",
        description: "retries of idempotent calls, 0 .. 5; an inner hop never retries",
    },
    EnvVar {
        name: "BREAKER_FAILURES",
        default: "5",
        description: "consecutive failures (connect error, timeout, 5xx) that open the breaker, 1 .. 1000",
    },
    EnvVar {
        name: "BREAKER_SUCCESSES",
        default: "2",
        description: "half-open trial successes that close it again (also the number of trials in flight), 1 .. 1000",
    },
    EnvVar {
        name: "BREAKER_COOLDOWN_S",
        default: "60",
        description: "seconds an open breaker fails fast before it lets trial calls through, 1 .. 3600",
    },
];

/// A configuration value that cannot be used. `Display` is one line naming the variable,
/// ready for stderr before the service exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct ConfigError {
    /// The offending variable.
    pub var: &'static str,
    /// The value as found in the environment.
    pub value: String,
    /// What a valid value looks like.
    pub reason: String,
}

/// Resilience settings shared by every [`crate::Upstream`] of a service.
///
/// Fields are public so tests and embedders can build one directly (e.g. a 200 ms
/// cool-down) instead of going through the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Timeout of one try (`UPSTREAM_TIMEOUT_MS`), covering connect, headers and body.
    pub timeout: Duration,
    /// Extra tries of idempotent calls (`UPSTREAM_RETRIES`).
    pub retries: u32,
    /// Consecutive failures that open the breaker (`BREAKER_FAILURES`).
    pub breaker_failures: u32,
    /// Half-open successes that close it (`BREAKER_SUCCESSES`); also the trial budget.
    pub breaker_successes: u32,
    /// Open -> half-open after this long (`BREAKER_COOLDOWN_S`).
    pub breaker_cooldown: Duration,
    /// First retry backoff; doubles per retry, capped at [`Self::backoff_max`], jittered.
    /// Not an env knob: the retry count and timeout are what operators tune.
    pub backoff_base: Duration,
    /// Upper bound of one backoff pause.
    pub backoff_max: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(1000),
            retries: 1,
            breaker_failures: 5,
            breaker_successes: 2,
            breaker_cooldown: Duration::from_secs(60),
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
        }
    }
}

impl UpstreamConfig {
    /// Reads [`ENV_VARS`] through `getenv` (pass `|k| std::env::var(k).ok()` in a service,
    /// a map lookup in tests). Unset or blank means the default; anything else must be
    /// ASCII decimal digits within the documented bounds (svc-wire's env rules).
    pub fn from_env<F>(getenv: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let defaults = Self::default();
        let timeout_ms = int(&getenv, "UPSTREAM_TIMEOUT_MS", 1000, 1, 60_000)?;
        let retries = int(&getenv, "UPSTREAM_RETRIES", 1, 0, 5)?;
        let failures = int(&getenv, "BREAKER_FAILURES", 5, 1, 1000)?;
        let successes = int(&getenv, "BREAKER_SUCCESSES", 2, 1, 1000)?;
        let cooldown_s = int(&getenv, "BREAKER_COOLDOWN_S", 60, 1, 3600)?;
        Ok(Self {
            timeout: Duration::from_millis(timeout_ms),
            retries: retries as u32,
            breaker_failures: failures as u32,
            breaker_successes: successes as u32,
            breaker_cooldown: Duration::from_secs(cooldown_s),
            ..defaults
        })
    }
}

fn int<F>(
    getenv: &F,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    let raw = getenv(var);
    // The shared rules (svc-wire): trimmed, blank = unset, ASCII digits only, bounds.
    let Some(text) = svc_wire::env::trimmed(raw.as_deref()) else {
        return Ok(default);
    };
    svc_wire::env::uint(text, min, max).map_err(|reason| ConfigError {
        var,
        value: text.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<UpstreamConfig, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        UpstreamConfig::from_env(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_env_table() {
        let cfg = parse(&[]).unwrap();
        assert_eq!(cfg, UpstreamConfig::default());
        assert_eq!(cfg.timeout, Duration::from_millis(1000));
        assert_eq!(cfg.retries, 1);
        assert_eq!(cfg.breaker_failures, 5);
        assert_eq!(cfg.breaker_successes, 2);
        assert_eq!(cfg.breaker_cooldown, Duration::from_secs(60));
        // Every documented default parses to the same config as "unset".
        let documented: Vec<(&str, &str)> = ENV_VARS.iter().map(|v| (v.name, v.default)).collect();
        assert_eq!(parse(&documented).unwrap(), cfg);
    }

    #[test]
    fn values_within_bounds_are_taken() {
        let cfg = parse(&[
            ("UPSTREAM_TIMEOUT_MS", "250"),
            ("UPSTREAM_RETRIES", "0"),
            ("BREAKER_FAILURES", "3"),
            ("BREAKER_SUCCESSES", "1"),
            ("BREAKER_COOLDOWN_S", " 5 "),
        ])
        .unwrap();
        assert_eq!(cfg.timeout, Duration::from_millis(250));
        assert_eq!(cfg.retries, 0);
        assert_eq!(cfg.breaker_failures, 3);
        assert_eq!(cfg.breaker_successes, 1);
        assert_eq!(cfg.breaker_cooldown, Duration::from_secs(5));
        assert_eq!(
            parse(&[("UPSTREAM_TIMEOUT_MS", "")]).unwrap().timeout,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn bad_values_give_one_line_naming_the_variable() {
        for (var, value) in [
            ("UPSTREAM_TIMEOUT_MS", "0"),
            ("UPSTREAM_TIMEOUT_MS", "60001"),
            ("UPSTREAM_TIMEOUT_MS", "10ms"),
            ("UPSTREAM_TIMEOUT_MS", "+5"),
            ("UPSTREAM_TIMEOUT_MS", "-1"),
            ("UPSTREAM_RETRIES", "6"),
            ("UPSTREAM_RETRIES", "1.5"),
            ("BREAKER_FAILURES", "0"),
            ("BREAKER_SUCCESSES", "0"),
            ("BREAKER_COOLDOWN_S", "abc"),
            ("BREAKER_COOLDOWN_S", "99999999999999999999999"),
        ] {
            let err = parse(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
            let line = err.to_string();
            assert!(line.starts_with(&format!("invalid {var}:")), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
