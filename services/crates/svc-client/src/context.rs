// Owns the per-call context a service hands the client (request id, trace, deadline,
// inner-hop flag). Parsing of the headers behind it lives in svc-wire, shared with svc-kit.
use std::time::{Duration, Instant};

/// What a call inherits from the request being served.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Sent as `X-Request-Id` when it is a valid request id (1..128 of `[A-Za-z0-9._-]`,
    /// the same rule services apply on the way in, see env.md); skipped otherwise.
    pub request_id: String,
    /// The incoming `traceparent`. A valid one is continued (same trace id, new span id
    /// per try); `None` or an invalid one starts a new trace for this call.
    pub traceparent: Option<String>,
    /// When the whole request must be answered. Each try waits at most
    /// `min(per-try timeout, remaining)`, the remaining budget is sent downstream in
    /// `X-Request-Deadline-Ms`, and no budget left means `DeadlineExceeded` without a call.
    pub deadline: Option<Instant>,
    /// True when this call is made while serving another service's call: such calls
    /// never retry, so retries do not multiply down a chain of services.
    pub inner_hop: bool,
}

impl CallContext {
    /// A context with just a request id: no trace, no deadline, not an inner hop.
    pub fn new(request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            ..Self::default()
        }
    }

    /// Budget left before the deadline; `None` when there is no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_is_none_without_deadline_and_saturates_at_zero() {
        let mut ctx = CallContext::new("r1");
        assert_eq!(ctx.remaining(), None);
        ctx.deadline = Some(Instant::now() - Duration::from_millis(5));
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    }
}
