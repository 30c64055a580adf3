// Owns the per-call context a service hands the client (request id, trace, deadline,
// inner-hop flag) and the W3C traceparent parsing/continuation behind it.
use std::fmt;
use std::time::{Duration, Instant};

/// What a call inherits from the request being served.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Sent as `X-Request-Id` (skipped if it is not a valid header value; services
    /// validate it on the way in, see env.md).
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

/// A parsed W3C `traceparent` (version 00 form on output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 16-byte trace id, never all zero.
    pub trace_id: [u8; 16],
    /// 8-byte id of the span that sends this header, never all zero.
    pub span_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a header value; `None` when it is not a valid traceparent.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let version = hex_exact::<1>(version)?[0];
        // Version ff is forbidden; version 00 has exactly four fields, later versions may add more.
        if version == 0xff || (version == 0 && rest.is_some()) {
            return None;
        }
        let trace_id = hex_exact::<16>(trace)?;
        let span_id = hex_exact::<8>(span)?;
        let flags = hex_exact::<1>(flags)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace (sampled flag set, since nothing upstream decided otherwise).
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero_random(),
            span_id: nonzero_random(),
            flags: 0x01,
        }
    }

    /// The same trace with a fresh span id: what an outgoing call sends.
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero_random(),
            ..*self
        }
    }

    /// Continues `incoming` when it is valid, else starts a new trace.
    pub fn continue_or_new(incoming: Option<&str>) -> Self {
        incoming
            .and_then(Self::parse)
            .map_or_else(Self::new_root, |p| p.child())
    }

    /// Trace id as 32 lowercase hex characters (for log fields).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// Span id as 16 lowercase hex characters (for log fields).
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes != [0; N] {
            return bytes;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// The spec allows lowercase hex only, so "AB" is rejected like any other garbage.
fn hex_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let raw = text.as_bytes();
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = digit(raw[2 * i])? << 4 | digit(raw[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_the_w3c_example() {
        let p = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(p.flags, 1);
        assert_eq!(p.to_string(), SAMPLE);
    }

    #[test]
    fn rejects_invalid_values() {
        for bad in [
            "",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A future version may carry extra fields; the first four still count.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn continuing_keeps_trace_and_flags_and_changes_span() {
        let parent = TraceParent::parse(SAMPLE).unwrap();
        let child = TraceParent::continue_or_new(Some(SAMPLE));
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, parent.flags);
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    }

    #[test]
    fn invalid_or_absent_parent_starts_a_new_trace() {
        let a = TraceParent::continue_or_new(None);
        let b = TraceParent::continue_or_new(Some("nonsense"));
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(a.flags, 1);
        assert!(TraceParent::parse(&a.to_string()).is_some());
    }

    #[test]
    fn remaining_is_none_without_deadline_and_saturates_at_zero() {
        let mut ctx = CallContext::new("r1");
        assert_eq!(ctx.remaining(), None);
        ctx.deadline = Some(Instant::now() - Duration::from_millis(5));
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    }
}
