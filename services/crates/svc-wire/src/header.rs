//! The shared request headers (services/contracts/header-vectors.json). Every value is
//! first trimmed of optional whitespace (SP, HTAB) as RFC 9110 does.

use std::fmt;

/// Header carrying the request id (kept when valid, generated otherwise, echoed back).
pub const REQUEST_ID: &str = "x-request-id";
/// W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// Remaining budget of the request in milliseconds.
pub const DEADLINE_MS: &str = "x-request-deadline-ms";

/// `X-Request-Deadline-Ms` saturates here (2^31-1 ms, about 24 days).
pub const MAX_DEADLINE_MS: u64 = (1 << 31) - 1;

/// A header value that breaks its rule; the message is safe to send to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHeader {
    /// The header, as spelled in the contract.
    pub header: &'static str,
    /// What a valid value looks like.
    pub expected: &'static str,
}

impl fmt::Display for MalformedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} must be {}", self.header, self.expected)
    }
}

impl std::error::Error for MalformedHeader {}

/// The value without leading and trailing SP / HTAB.
pub fn trim_ows(raw: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = raw.iter().position(|b| !is_ows(b)).unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &raw[start..end]
}

/// True for 1..128 characters of `[A-Za-z0-9._-]`.
pub fn valid_request_id(v: &str) -> bool {
    valid_request_id_bytes(v.as_bytes())
}

fn valid_request_id_bytes(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The request id to keep from a raw `X-Request-Id` (trimmed), `None` = make a new one.
pub fn request_id(raw: Option<&[u8]>) -> Option<&str> {
    let v = trim_ows(raw?);
    if !valid_request_id_bytes(v) {
        return None;
    }
    // Only ASCII passed the check above.
    std::str::from_utf8(v).ok()
}

/// A fresh UUID4 as 32 hex digits.
pub fn new_request_id() -> String {
    let mut b = rand::random::<[u8; 16]>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::trace::hex(&b)
}

/// `X-Request-Deadline-Ms`: ASCII digits only (leading zeros allowed, no sign), trimmed;
/// values above [`MAX_DEADLINE_MS`] saturate. Empty or anything else is malformed.
pub fn parse_deadline_ms(raw: &[u8]) -> Result<u64, MalformedHeader> {
    let v = trim_ows(raw);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(MalformedHeader {
            header: "X-Request-Deadline-Ms",
            expected: "an integer >= 0 (milliseconds)",
        });
    }
    let ms = v.iter().fold(0u64, |acc, d| {
        (acc * 10 + u64::from(d - b'0')).min(MAX_DEADLINE_MS)
    });
    Ok(ms)
}

/// A JSON request body's `Content-Type`: `application/json`, case-insensitive, with at most
/// a `charset=utf-8` parameter (the value may be quoted). Absent or anything else: false.
pub fn is_json_content_type(raw: Option<&[u8]>) -> bool {
    let Some(raw) = raw else {
        return false;
    };
    let mut parts = trim_ows(raw).split(|b| *b == b';');
    let essence = trim_ows(parts.next().unwrap_or_default());
    if !essence.eq_ignore_ascii_case(b"application/json") {
        return false;
    }
    let mut charset_seen = false;
    for param in parts {
        let param = trim_ows(param);
        let Some(eq) = param.iter().position(|b| *b == b'=') else {
            return false;
        };
        let (name, value) = (&param[..eq], &param[eq + 1..]);
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        if charset_seen
            || !name.eq_ignore_ascii_case(b"charset")
            || !value.eq_ignore_ascii_case(b"utf-8")
        {
            return false;
        }
        charset_seen = true;
    }
    true
}

/// The token of `Authorization: Bearer <token>`: scheme case-insensitive, then one or more
/// spaces, then the token exactly as sent (compare it in constant time). `None` = no bearer
/// token at all (absent, empty, another scheme): a 401.
pub fn bearer_token(raw: Option<&[u8]>) -> Option<&[u8]> {
    let v = trim_ows(raw?);
    let sp = v.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = (&v[..sp], &v[sp..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    Some(&rest[start..])
}

/// The `http_request_method` label: the method when it is one of RFC 9110's plus PATCH,
/// else `_OTHER` (OpenTelemetry semantic conventions), so invented methods cannot mint
/// new series.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ows_trim() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"\nx\n"), b"\nx\n");
    }

    #[test]
    fn request_ids_are_kept_or_generated() {
        assert!(valid_request_id("abc-123_x.y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert_eq!(request_id(Some(b" abc ")), Some("abc"));
        let id = new_request_id();
        assert_eq!(id.len(), 32);
        assert_eq!(&id[12..13], "4");
        assert!(valid_request_id(&id));
    }

    #[test]
    fn methods_outside_the_list_are_other() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        for m in ["FOO1", "get", "PROPFIND", "", "BREW"] {
            assert_eq!(method_label(m), "_OTHER", "{m}");
        }
    }
}
