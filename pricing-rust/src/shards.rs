//! The router's view of the inventory ring (services/contracts/ring.md, "Routers"): the
//! ring record's members and, for each, the URL of its live instance that started last.
//! [`View::from_registry`] is the rule itself, with no I/O (router-vectors.json judges
//! it); [`read`] fetches the record and the registry it is computed from.

use std::collections::{BTreeMap, HashMap};

use redis::aio::ConnectionManager;
use svc_kit::registry::{self, Entry};

/// The ring record: hash `{epoch, members}` in the registry's Redis.
pub const RECORD_KEY: &str = "polyshop:ring:inventory";

/// How often a router reads the record and the registry again (ring.md: at least every 2 s).
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The registry name of inventory instances; other services' entries never route.
const INVENTORY: &str = "inventory";

/// The ring record as read from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Starts at 1, +1 per change of the members.
    pub epoch: u64,
    /// The shard ids, sorted.
    pub members: Vec<String>,
}

/// The members of the ring and the URL each is reached at (`None`: no live instance, the
/// member is down).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    routes: BTreeMap<String, Option<String>>,
    // The instance behind each route: a restarted shard is a new instance, whose upstream
    // (and breaker) starts afresh even at the same URL.
    instances: BTreeMap<String, String>,
    others: BTreeMap<String, String>,
}

impl View {
    /// The view of `members` given the live registry `entries`: per member, among the
    /// `inventory` entries whose `shard` is that member, the one that started last
    /// (`started_at` as an instant; one not in the contract's form never beats one that
    /// is), equal instants going to the `instance_id` that sorts first.
    pub fn from_registry<S: AsRef<str>>(members: &[S], entries: &[Entry]) -> Self {
        let latest = |shard: &str| {
            entries
                .iter()
                .filter(|e| e.name == INVENTORY && e.shard.as_deref() == Some(shard))
                .max_by(|a, b| {
                    started_key(&a.started_at)
                        .cmp(&started_key(&b.started_at))
                        // Reversed: of equal instants the smaller id is the "larger".
                        .then_with(|| b.instance_id.cmp(&a.instance_id))
                })
        };
        let mut routes = BTreeMap::new();
        let mut instances = BTreeMap::new();
        for m in members {
            let m = m.as_ref();
            let chosen = latest(m);
            if let Some(e) = chosen {
                instances.insert(m.to_owned(), e.instance_id.clone());
            }
            routes.insert(m.to_owned(), chosen.map(|e| e.url.clone()));
        }
        // Registered shards the record does not name yet: a rebalance's new shard, which a
        // 421 may name before the record does.
        let mut others = BTreeMap::new();
        for e in entries.iter().filter(|e| e.name == INVENTORY) {
            let Some(shard) = e.shard.as_deref() else {
                continue;
            };
            if routes.contains_key(shard) || others.contains_key(shard) {
                continue;
            }
            if let Some(chosen) = latest(shard) {
                instances.insert(shard.to_owned(), chosen.instance_id.clone());
                others.insert(shard.to_owned(), chosen.url.clone());
            }
        }
        Self {
            routes,
            instances,
            others,
        }
    }

    /// Live shards that are not members, with their URLs: where a 421 may also send a call.
    pub fn others(&self) -> &BTreeMap<String, String> {
        &self.others
    }

    /// The `instance_id` behind a member's route (`None`: the member is down).
    pub fn instance(&self, member: &str) -> Option<&str> {
        self.instances.get(member).map(String::as_str)
    }

    /// Each member and its URL, by member id.
    pub fn routes(&self) -> &BTreeMap<String, Option<String>> {
        &self.routes
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f]Z` (1-9 fraction digits) as a sortable key: the fixed-width
/// date and time, then the fraction padded to nanoseconds, so `10:00:00.5Z` sorts after
/// `10:00:00.123456Z` although it does not as text. `None` for any other form, and
/// `None < Some`: such an entry ranks below every well-formed one.
fn started_key(s: &str) -> Option<(&str, [u8; 9])> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let shape_ok = b[..19].iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let mut fraction = [b'0'; 9];
    match &b[19..b.len() - 1] {
        [] => {}
        [b'.', digits @ ..]
            if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            fraction[..digits.len()].copy_from_slice(digits);
        }
        _ => return None,
    }
    Some((&s[..19], fraction))
}

/// Why a read gave no answer; the router then keeps the view it has.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Redis is away, slow or refused the call.
    #[error("registry redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A record that cannot be read as a ring: routing over it (or over nothing) would
    /// send products to shards that do not hold them.
    #[error("ring record {RECORD_KEY}: {0}")]
    BadRecord(String),
}

/// The ring record and the view over it; `Ok(None)` when there is no record (routers
/// then use `INVENTORY_URLS`).
pub async fn read(conn: &mut ConnectionManager) -> Result<Option<(Record, View)>, ReadError> {
    let Some(record) = read_record(conn).await? else {
        return Ok(None);
    };
    let (_, entries) = registry::list(conn).await?;
    let view = View::from_registry(&record.members, &entries);
    Ok(Some((record, view)))
}

async fn read_record(conn: &mut ConnectionManager) -> Result<Option<Record>, ReadError> {
    // A missing key reads as an empty hash: no record.
    let mut fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(RECORD_KEY)
        .query_async(conn)
        .await?;
    if fields.is_empty() {
        return Ok(None);
    }
    match (fields.remove("epoch"), fields.remove("members")) {
        (Some(epoch), Some(members)) => parse_record(&epoch, &members).map(Some),
        (epoch, members) => Err(ReadError::BadRecord(format!(
            "epoch {epoch:?}, members {members:?}: both fields are required"
        ))),
    }
}

fn parse_record(epoch: &str, members: &str) -> Result<Record, ReadError> {
    let epoch = Some(epoch)
        .filter(|e| !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|e| e.parse::<u64>().ok())
        .filter(|e| *e >= 1)
        .ok_or_else(|| ReadError::BadRecord(format!("epoch {epoch:?} is not an integer >= 1")))?;
    // The list rules of ring.md: trimmed, blank and duplicate names dropped, order free.
    let mut names: Vec<String> = members
        .split(',')
        .map(|m| m.trim_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Err(ReadError::BadRecord("no members".to_owned()));
    }
    Ok(Record {
        epoch,
        members: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_at_keys_follow_the_contract_form() {
        let key = |s| started_key(s).map(|(t, f)| format!("{t}.{}", String::from_utf8_lossy(&f)));
        assert_eq!(
            key("2026-12-03T10:00:00Z").as_deref(),
            Some("2026-12-03T10:00:00.000000000")
        );
        assert_eq!(
            key("2026-12-03T10:00:00.5Z").as_deref(),
            Some("2026-12-03T10:00:00.500000000")
        );
        assert_eq!(
            key("2026-12-03T10:00:00.123456789Z").as_deref(),
            Some("2026-12-03T10:00:00.123456789")
        );
        for bad in [
            "",
            "yesterday",
            "2026-12-03 10:00:00Z",
            "2026-12-03T10:00:00",
            "2026-12-03T10:00:00+00:00",
            "2026-12-03T10:00:00.Z",
            "2026-12-03T10:00:00.1234567890Z",
            "2026-12-03T10:00:00.12aZ",
            "2026-12-03t10:00:00Z",
            "2026-1a-03T10:00:00Z",
            "2026-12-03T10:00:00ZZ",
            "২০২৬-12-03T10:00:00Z",
        ] {
            assert_eq!(started_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn records_are_parsed_strictly() {
        assert_eq!(
            parse_record("3", " inv-1,inv-0,,inv-1 ").unwrap(),
            Record {
                epoch: 3,
                members: vec!["inv-0".into(), "inv-1".into()],
            }
        );
        for (epoch, members) in [("0", "inv-0"), ("-1", "inv-0"), ("1x", "inv-0"), ("", "a")] {
            assert!(parse_record(epoch, members).is_err(), "{epoch:?}");
        }
        assert!(parse_record("1", " , ").is_err());
    }
}
