//! W3C `traceparent`: parsing (server and client read it the same way), continuation with
//! a new span, and a fresh root when the incoming one is absent or invalid.

use std::fmt;

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

// "00-" 32 hex "-" 16 hex "-" 2 hex
const V00_LEN: usize = 55;

impl TraceParent {
    /// Parses a header value; `None` when it is not a valid traceparent.
    pub fn parse(value: &str) -> Option<Self> {
        Self::parse_bytes(value.as_bytes())
    }

    /// Parses raw header bytes (trimmed of SP / HTAB first); `None` when invalid.
    ///
    /// Lowercase hex only; version `ff` is invalid; version 00 is exactly 55 bytes, a
    /// higher version is read as 00 and may only append after a `-`.
    pub fn parse_bytes(raw: &[u8]) -> Option<Self> {
        let v = crate::header::trim_ows(raw);
        if v.len() < V00_LEN || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let version = hex_exact::<1>(&v[0..2])?[0];
        if version == 0xff {
            return None;
        }
        if v.len() > V00_LEN && (version == 0 || v[V00_LEN] != b'-') {
            return None;
        }
        let trace_id = hex_exact::<16>(&v[3..35])?;
        let span_id = hex_exact::<8>(&v[36..52])?;
        let flags = hex_exact::<1>(&v[53..55])?[0];
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
        Self::continue_or_new_bytes(incoming.map(str::as_bytes))
    }

    /// [`Self::continue_or_new`] over raw header bytes.
    pub fn continue_or_new_bytes(incoming: Option<&[u8]>) -> Self {
        incoming
            .and_then(Self::parse_bytes)
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

// The spec allows lowercase hex only, so "AB" is rejected like any other garbage.
fn hex_exact<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (digit(text[2 * i])? << 4) | digit(text[2 * i + 1])?;
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
}
