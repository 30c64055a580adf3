// Owns the consistent-hash ring that maps a product to one inventory shard
// (INVENTORY_URLS): md5, 150 virtual nodes per shard, the same in every language.
/// Consistent hash of shard names (the inventory shard URLs).
///
/// Algorithm, so the gateway (Python) and pricing (Rust) agree on every key:
/// a shard `s` owns the points `h("{s}:{i}")` for `i` in `0..150`, where `h(x)` is the
/// first 8 bytes of `md5(x)` read as a big-endian `u64`; a key `k` (a product id in
/// decimal, e.g. `"123"`) belongs to the shard of the first point `>= h(k)`, wrapping
/// to the lowest point. Shard names are the `INVENTORY_URLS` entries with surrounding
/// whitespace trimmed and nothing else changed.
#[derive(Debug, Clone)]
pub struct ShardRing {
    shards: Vec<String>,
    // Sorted by (hash, shard index): the index breaks the (unlikely) tie deterministically.
    points: Vec<(u64, usize)>,
}

impl ShardRing {
    /// Virtual nodes per shard.
    pub const VIRTUAL_NODES: usize = 150;

    /// Builds the ring; blank and duplicate names are ignored.
    pub fn new<I, S>(shards: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names: Vec<String> = Vec::new();
        for s in shards {
            let s = s.as_ref().trim();
            if !s.is_empty() && !names.iter().any(|n| n == s) {
                names.push(s.to_owned());
            }
        }
        let mut points = Vec::with_capacity(names.len() * Self::VIRTUAL_NODES);
        for (idx, name) in names.iter().enumerate() {
            for i in 0..Self::VIRTUAL_NODES {
                points.push((hash(&format!("{name}:{i}")), idx));
            }
        }
        // Index order is insertion order, so ties go to the shard listed first; sort by
        // (hash, name) instead so the answer does not depend on the order of the list.
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| names[a.1].cmp(&names[b.1])));
        Self {
            shards: names,
            points,
        }
    }

    /// Parses a comma-separated list such as `INVENTORY_URLS`.
    pub fn from_list(list: &str) -> Self {
        Self::new(list.split(','))
    }

    /// The shards on the ring, in the order given.
    pub fn shards(&self) -> &[String] {
        &self.shards
    }

    /// The shard owning `key`; `None` only for an empty ring.
    pub fn shard_for(&self, key: &str) -> Option<&str> {
        let h = hash(key);
        let at = self.points.partition_point(|(p, _)| *p < h);
        let (_, idx) = self.points.get(at).or_else(|| self.points.first())?;
        Some(&self.shards[*idx])
    }

    /// The shard owning a product id (its decimal form is the key).
    pub fn shard_for_product(&self, product_id: u64) -> Option<&str> {
        self.shard_for(&product_id.to_string())
    }
}

fn hash(key: &str) -> u64 {
    let digest = md5::compute(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.0[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SHARDS: [&str; 3] = [
        "http://inv-0:8002",
        "http://inv-1:8002",
        "http://inv-2:8002",
    ];

    #[test]
    fn hash_is_md5_prefix_big_endian() {
        // md5("123") = 202cb962ac59075b964b07152d234b70
        assert_eq!(hash("123"), 0x202c_b962_ac59_075b);
    }

    #[test]
    fn empty_ring_has_no_shard_and_one_shard_owns_everything() {
        assert_eq!(ShardRing::new(Vec::<String>::new()).shard_for("1"), None);
        let one = ShardRing::from_list(" http://inv-0:8002 , ,");
        assert_eq!(one.shards(), ["http://inv-0:8002"]);
        assert!((1..500u64).all(|k| one.shard_for_product(k) == Some("http://inv-0:8002")));
    }

    #[test]
    fn a_key_always_maps_to_the_same_shard_whatever_the_list_order() {
        let a = ShardRing::new(SHARDS);
        let b = ShardRing::new([SHARDS[2], SHARDS[0], SHARDS[1], SHARDS[0]]);
        for k in 1..2000u64 {
            let first = a.shard_for_product(k);
            assert_eq!(first, a.shard_for_product(k));
            assert_eq!(first, b.shard_for_product(k));
        }
    }

    #[test]
    fn keys_spread_over_all_shards() {
        let ring = ShardRing::new(SHARDS);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for k in 1..=3000u64 {
            *counts
                .entry(ring.shard_for_product(k).unwrap())
                .or_default() += 1;
        }
        // 150 virtual nodes keep each shard well within 2x of the fair share (1000).
        for s in SHARDS {
            let n = counts.get(s).copied().unwrap_or(0);
            assert!((500..=1500).contains(&n), "{s}: {n}");
        }
    }

    #[test]
    fn removing_a_shard_moves_only_its_keys() {
        let full = ShardRing::new(SHARDS);
        let less = ShardRing::new([SHARDS[0], SHARDS[2]]);
        let mut moved = 0;
        for k in 1..=3000u64 {
            let before = full.shard_for_product(k).unwrap();
            let after = less.shard_for_product(k).unwrap();
            if before == SHARDS[1] {
                moved += 1;
                assert_ne!(after, SHARDS[1]);
            } else {
                assert_eq!(before, after, "key {k} moved although its shard stayed");
            }
        }
        assert!(moved > 0);
    }
}
