//! The value rules of services/contracts/env.md (and env-vectors.json), one function per
//! kind. Each takes the value already through [`trimmed`] and answers the canonical value
//! or the reason it is refused (one line; a secret's reason never repeats the value).
//! Naming the variable is the caller's job (svc-kit `Vars`, svc-client `UpstreamConfig`).

/// The value trimmed of ASCII whitespace; absent, empty or blank is `None` (unset).
pub fn trimmed(raw: Option<&str>) -> Option<&str> {
    let v = raw?.trim_matches(|c: char| c.is_ascii_whitespace());
    (!v.is_empty()).then_some(v)
}

/// An integer of ASCII decimal digits (leading zeros allowed; no sign, separator,
/// exponent or anything else) within `min..=max`.
pub fn uint(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let reason = || format!("must be an integer in {min}..{max}, got {text:?}");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(reason());
    }
    // All digits: the only parse error left is overflow, which is out of bounds anyway.
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(reason()),
    }
}

/// A number: ASCII digits with at most one decimal point and at least one digit (no sign,
/// exponent, `nan` or `inf`) within `min..=max`.
pub fn number(text: &str, min: f64, max: f64) -> Result<f64, String> {
    let reason = || format!("must be a number in {min}..{max}, got {text:?}");
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let points = text.bytes().filter(|b| *b == b'.').count();
    if digits == 0 || points > 1 || digits + points != text.len() {
        return Err(reason());
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= min && n <= max => Ok(n),
        _ => Err(reason()),
    }
}

/// One of `allowed` (lower case), compared case-insensitively; answers the allowed spelling.
pub fn one_of<'a>(text: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(text))
        .copied()
        .ok_or_else(|| format!("must be one of {}, got {text:?}", allowed.join(", ")))
}

/// An upstream base URL `http://host[:port][/prefix]`: http only (https is refused, TLS
/// ends at the ingress or mesh), a host, port 1..65535, no credentials, query, fragment or
/// whitespace. Canonical form: lower-case scheme, trailing slashes dropped.
pub fn http_url(text: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("{why}, got {text:?}"));
    let b = text.as_bytes();
    if b.len() < 7 || !b[..7].eq_ignore_ascii_case(b"http://") {
        if b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://") {
            return bad(
                "must be http:// (https is not supported: TLS ends at the ingress or mesh)",
            );
        }
        return bad("must be an http://host[:port][/prefix] URL");
    }
    let rest = &text[7..];
    if let Some(why) = forbidden_chars(rest) {
        return bad(why);
    }
    if rest.contains(['?', '#']) {
        return bad("must not have a query or fragment");
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return bad("must not carry credentials");
    }
    if let Err(why) = host_port(authority) {
        return bad(why);
    }
    Ok(format!("http://{authority}{}", path.trim_end_matches('/')))
}

/// `INVENTORY_URLS`: comma-separated [`http_url`]s; entries trimmed, empty and duplicate
/// entries dropped (first kept), order kept, nothing else normalised (they are the shard
/// names the ring hashes). No entry at all is `None` (unset).
pub fn http_url_list(text: &str) -> Result<Option<Vec<String>>, String> {
    let mut out: Vec<String> = Vec::new();
    for entry in text.split(',') {
        let Some(entry) = trimmed(Some(entry)) else {
            continue;
        };
        http_url(entry)?;
        if !out.iter().any(|e| e == entry) {
            out.push(entry.to_owned());
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// `REDIS_URL`: `redis://[[user]:password@]host[:port][/db]`, db 0..15, no TLS
/// (`rediss://`), no whitespace. Kept as written.
pub fn redis_url(text: &str) -> Result<String, String> {
    // The reason never repeats the value: it may carry a password.
    let b = text.as_bytes();
    if b.len() < 8 || !b[..8].eq_ignore_ascii_case(b"redis://") {
        return Err(
            "must be a redis://[:password@]host[:port][/db] URL (rediss:// is not supported)"
                .into(),
        );
    }
    let rest = &text[8..];
    if let Some(why) = forbidden_chars(rest) {
        return Err(why.to_owned());
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port(host).map_err(str::to_owned)?;
    match path.strip_prefix('/') {
        None | Some("") => {}
        Some(db) => {
            uint(db, 0, 15).map_err(|_| "db must be an integer in 0..15".to_owned())?;
        }
    }
    Ok(text.to_owned())
}

/// `ADMIN_TOKEN`: 1..256 visible ASCII characters (no spaces). The reason never shows it.
pub fn secret(text: &str) -> Result<String, String> {
    if text.len() > 256 {
        return Err(format!(
            "must be at most 256 characters, got {}",
            text.len()
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII characters without spaces".to_owned());
    }
    Ok(text.to_owned())
}

/// `INSTANCE_ID`: 1..64 characters of `[A-Za-z0-9._-]`.
pub fn instance_id(text: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "must be 1..64 characters of [A-Za-z0-9._-], got {text:?}"
        ))
    }
}

fn forbidden_chars(s: &str) -> Option<&'static str> {
    if s.bytes().any(|b| b <= b' ' || b == 0x7f) {
        Some("must not contain whitespace or control characters")
    } else if !s.is_ascii() {
        Some("must be ASCII")
    } else {
        None
    }
}

/// `host[:port]` or `[v6]:port`: a host is required, the port is 1..65535 when given.
fn host_port(authority: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("has an unclosed [ in the host")?;
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("must name a valid IPv6 host");
        }
        match after {
            "" => (addr, None),
            p => (
                addr,
                Some(p.strip_prefix(':').ok_or("has garbage after the host")?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("must name a host");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err("must name a valid host");
    }
    if let Some(p) = port {
        if p.len() > 5 || uint(p, 1, 65535).is_err() {
            return Err("port must be an integer in 1..65535");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_plain_digits() {
        assert_eq!(uint("0065", 1, 100), Ok(65));
        for bad in [
            "", "+5", "-1", "1_0", "1e3", "0x10", "\u{661}", "1 0", "5ms", "1.0",
        ] {
            assert!(uint(bad, 0, 100).is_err(), "{bad}");
        }
        assert!(uint("999999999999999999999999999999", 0, u64::MAX).is_err());
    }

    #[test]
    fn numbers_have_one_optional_point() {
        assert_eq!(number(".5", 0.0, 1.0), Ok(0.5));
        assert_eq!(number("1.", 0.0, 1.0), Ok(1.0));
        for bad in [
            ".", "nan", "inf", "+0.5", "-0.1", "1e-1", "0,5", "1.2.3", "0x1",
        ] {
            assert!(number(bad, 0.0, 1.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(http_url("http://a:1//").as_deref(), Ok("http://a:1"));
        assert_eq!(http_url("HTTP://a/b/").as_deref(), Ok("http://a/b"));
        assert_eq!(
            http_url("http://[::1]:8001").as_deref(),
            Ok("http://[::1]:8001")
        );
        for bad in [
            "https://a",
            "http://",
            "http:///x",
            "http://a:",
            "http://a:0",
            "http://u@a",
            "http://[::1",
            "http://a b",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
        assert!(
            redis_url("redis://:hunter2@h:6379/x")
                .unwrap_err()
                .find("hunter2")
                .is_none()
        );
    }
}
