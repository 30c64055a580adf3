// Owns the check that ShardRing answers every vector of services/contracts/ring-vectors.json,
// whatever the order of the names and with blank, padded and repeated names mixed in.
use serde_json::Value;
use svc_client::ShardRing;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/ring-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("ring vectors file"))
        .expect("ring vectors json")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array of names")
        .iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn every_vector_gives_its_owners() {
    let doc = vectors();
    assert_eq!(doc["virtual_nodes"], ShardRing::VIRTUAL_NODES);
    let all = doc["vectors"].as_array().expect("vectors");
    assert!(all.len() >= 400, "only {} vectors", all.len());
    for (n, v) in all.iter().enumerate() {
        let nodes = strings(&v["nodes"]);
        let key = v["key"].as_u64().expect("key");
        let replicas = usize::try_from(v["replicas"].as_u64().expect("replicas")).expect("usize");
        let want = strings(&v["owners"]);

        // The list as given, reversed, and rotated with blank, padded and duplicate
        // entries: ring.md says none of that may change an owner.
        let mut reversed = nodes.clone();
        reversed.reverse();
        let mut noisy: Vec<String> = vec![" ".into(), String::new()];
        noisy.extend(nodes.iter().skip(1).map(|s| format!("\t{s} ")));
        noisy.extend(nodes.iter().take(1).cloned());
        noisy.extend(nodes.iter().map(|s| format!(" {s}\r\n")));
        for list in [&nodes, &reversed, &noisy] {
            let ring = ShardRing::new(list);
            let ctx = format!("vector {n}: nodes {list:?} key {key} replicas {replicas}");
            assert_eq!(ring.owners(key, replicas), want, "{ctx}");
            assert_eq!(ring.shard_for_product(key), Some(want[0].as_str()), "{ctx}");
            assert_eq!(
                ring.shard_for(&key.to_string()),
                Some(want[0].as_str()),
                "{ctx}"
            );
        }
    }
}
