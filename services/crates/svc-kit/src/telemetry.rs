//! JSON-lines logging (observability.md): one object per line on stdout with `ts`, `level`,
//! `service`, `msg`, then `trace_id`/`span_id`/`request_id` of the enclosing request span,
//! then the event's own fields. A small `Layer` instead of tracing-subscriber's `fmt`
//! keeps the field names exactly as the contract spells them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Installs the JSON logger as the global subscriber. `level` is one of
/// debug/info/warn/error (validated by config). Calling it twice is harmless.
pub fn init(service: &'static str, level: &str) {
    let _ = SERVICE.set(service);
    let filter = match level {
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    let subscriber = Registry::default()
        .with(JsonLayer::new(service, Output::Stdout))
        .with(filter);
    // Err only when a subscriber is already installed (tests): keep the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

static SERVICE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// The `config` line logged once at start: one field per variable (pass masked values,
/// e.g. `CommonConfig::effective`). Written directly because tracing fields are static.
pub fn log_config(effective: &[(&'static str, String)]) {
    let mut line = String::with_capacity(512);
    line.push('{');
    push_field(
        &mut line,
        "ts",
        &Value::from(rfc3339_millis(SystemTime::now())),
    );
    push_field(&mut line, "level", &Value::from("info"));
    push_field(
        &mut line,
        "service",
        &Value::from(*SERVICE.get().unwrap_or(&"unknown")),
    );
    push_field(&mut line, "msg", &Value::from("config"));
    for (k, v) in effective {
        push_field(&mut line, k, &Value::from(v.as_str()));
    }
    line.push_str("}\n");
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

/// Where lines go.
#[derive(Clone)]
pub enum Output {
    /// Process stdout (the service).
    Stdout,
    /// A shared buffer (tests).
    Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

/// The layer writing one JSON object per event.
pub struct JsonLayer {
    service: &'static str,
    out: Output,
}

impl JsonLayer {
    /// A layer for `service` writing to `out`.
    pub fn new(service: &'static str, out: Output) -> Self {
        Self { service, out }
    }
}

/// The request ids recorded on a span, looked up by its events.
struct SpanIds(Vec<(&'static str, String)>);

const CONTEXT_FIELDS: [&str; 3] = ["trace_id", "span_id", "request_id"];

struct SpanVisitor(Vec<(&'static str, String)>);

impl Visit for SpanVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if CONTEXT_FIELDS.contains(&field.name()) {
            self.0.push((field.name(), value.to_owned()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if CONTEXT_FIELDS.contains(&field.name()) {
            self.0.push((field.name(), format!("{value:?}")));
        }
    }
}

struct EventVisitor {
    msg: String,
    fields: Vec<(String, Value)>,
}

impl Visit for EventVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_owned();
        } else {
            self.fields
                .push((field.name().to_owned(), Value::from(value)));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .push((field.name().to_owned(), Value::from(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .push((field.name().to_owned(), Value::from(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = (value * 1000.0).round() / 1000.0;
        self.fields.push((field.name().to_owned(), Value::from(v)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .push((field.name().to_owned(), Value::from(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.msg = text;
        } else {
            self.fields
                .push((field.name().to_owned(), Value::from(text)));
        }
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = SpanVisitor(Vec::new());
        attrs.record(&mut v);
        if !v.0.is_empty() {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(SpanIds(v.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut v = EventVisitor {
            msg: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut v);
        let mut ids: Vec<(&'static str, String)> = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(found) = span.extensions().get::<SpanIds>() {
                    ids.clone_from(&found.0);
                    break;
                }
            }
        }
        let mut line = String::with_capacity(256);
        line.push('{');
        push_field(
            &mut line,
            "ts",
            &Value::from(rfc3339_millis(SystemTime::now())),
        );
        push_field(
            &mut line,
            "level",
            &Value::from(level_name(event.metadata().level())),
        );
        push_field(&mut line, "service", &Value::from(self.service));
        push_field(&mut line, "msg", &Value::from(v.msg));
        for (k, val) in &ids {
            push_field(&mut line, k, &Value::from(val.as_str()));
        }
        for (k, val) in &v.fields {
            if !ids.iter().any(|(i, _)| i == k) {
                push_field(&mut line, k, val);
            }
        }
        line.push_str("}\n");
        match &self.out {
            Output::Stdout => {
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            }
            Output::Buffer(buf) => {
                if let Ok(mut b) = buf.lock() {
                    b.extend_from_slice(line.as_bytes());
                }
            }
        }
    }
}

// Fixed fields first, in the order of observability.md (a serde_json Map would sort them).
fn push_field(line: &mut String, key: &str, value: &Value) {
    if !line.ends_with('{') {
        line.push(',');
    }
    line.push_str(&Value::from(key).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        _ => "debug",
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T10:00:00.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let mut s = String::with_capacity(24);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    );
    s
}

// Howard Hinnant's days -> civil date algorithm; avoids a date crate for one format.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_428_000_123);
        assert_eq!(rfc3339_millis(t), "2026-11-23T10:00:00.123Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_millis(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn lines_carry_the_shared_fields_and_the_span_ids() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let subscriber =
            Registry::default().with(JsonLayer::new("pricing", Output::Buffer(buf.clone())));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                trace_id = "t1",
                span_id = "s1",
                request_id = "r1"
            );
            span.in_scope(|| tracing::warn!(route = "/x", status = 200u64, "request"));
            tracing::info!(port = 8001u64, "listening");
        });
        let text =
            String::from_utf8(buf.lock().map(|b| b.clone()).unwrap_or_default()).expect("utf8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(
            text.starts_with(r#"{"ts":"#)
                && text.contains(
                    r#""level":"warn","service":"pricing","msg":"request","trace_id":"t1""#
                ),
            "{text}"
        );
        let first = &lines[0];
        assert_eq!(first["level"], "warn");
        assert_eq!(first["service"], "pricing");
        assert_eq!(first["msg"], "request");
        assert_eq!(first["trace_id"], "t1");
        assert_eq!(first["span_id"], "s1");
        assert_eq!(first["request_id"], "r1");
        assert_eq!(first["route"], "/x");
        assert_eq!(first["status"], 200);
        assert!(first["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(lines[1]["msg"], "listening");
        assert!(lines[1].get("request_id").is_none());
    }
}
