//! Every case of services/contracts/router-vectors.json through `View::from_registry`: the
//! registry entries as given and reversed (the choice must not depend on their order).

use std::collections::BTreeMap;

use pricing::shards::View;
use serde::Deserialize;
use svc_kit::registry::Entry;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    members: Vec<String>,
    entries: Vec<Entry>,
    routes: BTreeMap<String, Option<String>>,
}

fn vectors() -> Vectors {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/contracts/router-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("router vectors file"))
        .expect("router vectors json")
}

#[test]
fn every_router_vector_gives_its_routes() {
    let cases = vectors().cases;
    assert!(cases.len() >= 11, "only {} cases", cases.len());
    for case in cases {
        let mut reversed = case.entries.clone();
        reversed.reverse();
        for entries in [&case.entries, &reversed] {
            let view = View::from_registry(&case.members, entries);
            assert_eq!(view.routes(), &case.routes, "case {:?}", case.name);
        }
    }
}
