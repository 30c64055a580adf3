// Owns what can go wrong on an upstream call, in terms a service maps to its own
// error JSON (503 upstream_unavailable / deadline_exceeded) without leaking internals.
use std::time::Duration;

/// Why an upstream was judged unavailable; for logs and metrics, never for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// No connection could be made, or it broke before a full answer arrived.
    Connect,
    /// The per-try timeout elapsed before a full answer arrived.
    Timeout,
    /// The upstream answered with this 5xx status.
    Status(u16),
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Timeout => f.write_str("timeout"),
            Self::Status(s) => write!(f, "status {s}"),
        }
    }
}

/// An upstream call that produced no usable answer.
///
/// 4xx answers are *not* errors: they come back as `Ok(UpstreamResponse)` so the caller
/// can read a 404 or 409 body. `Display` texts are generic enough for a client message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connect error, timeout or 5xx on the last try (after the retries the call was
    /// allowed). Map to 503 `upstream_unavailable` with `Retry-After`.
    #[error("upstream service unavailable")]
    Unavailable {
        /// Suggested client back-off.
        retry_after: Duration,
        /// What the last try hit; log it, do not show it.
        cause: FailureCause,
    },
    /// The breaker is open (or half-open with its trial calls all in flight), so the
    /// call failed fast without touching the network. Map to 503 `upstream_unavailable`.
    #[error("upstream service unavailable")]
    BreakerOpen {
        /// Time left until the breaker admits trial calls again.
        retry_after: Duration,
    },
    /// The caller's deadline left no time for (another) try. Map to 503 `deadline_exceeded`.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The request could not be built (bad path, unserialisable body): a bug in the caller.
    #[error("internal error")]
    InvalidRequest(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An answer whose body is not the JSON the caller expected
    /// (from [`crate::UpstreamResponse::json`]).
    #[error("upstream service sent an invalid answer")]
    InvalidResponse(#[source] serde_json::Error),
}

impl ClientError {
    /// The `Retry-After` a service should send for this error, in whole seconds (>= 1),
    /// or `None` when the error is not a 503 kind.
    pub fn retry_after_secs(&self) -> Option<u64> {
        let d = match self {
            Self::Unavailable { retry_after, .. } | Self::BreakerOpen { retry_after } => {
                *retry_after
            }
            Self::DeadlineExceeded => Duration::from_secs(1),
            Self::InvalidRequest(_) | Self::InvalidResponse(_) => return None,
        };
        // Round up: "retry in 0.3 s" must not become "Retry-After: 0".
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        Some(secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_at_least_one() {
        let open = |ms| ClientError::BreakerOpen {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(open(0).retry_after_secs(), Some(1));
        assert_eq!(open(300).retry_after_secs(), Some(1));
        assert_eq!(open(1000).retry_after_secs(), Some(1));
        assert_eq!(open(1001).retry_after_secs(), Some(2));
        assert_eq!(open(59_500).retry_after_secs(), Some(60));
        assert_eq!(ClientError::DeadlineExceeded.retry_after_secs(), Some(1));
        let bad = serde_json::from_slice::<u8>(b"x").unwrap_err();
        assert_eq!(ClientError::InvalidResponse(bad).retry_after_secs(), None);
    }

    #[test]
    fn messages_carry_no_internal_detail() {
        let e = ClientError::Unavailable {
            retry_after: Duration::from_secs(1),
            cause: FailureCause::Status(502),
        };
        assert_eq!(e.to_string(), "upstream service unavailable");
    }
}
