//! services/contracts/env-vectors.json: every case whose variables pricing reads loads the
//! config from exactly that env and gets the expected values or the one-line error naming
//! the variable (the binary turns it into exit 2, see binary.rs).

use std::collections::HashMap;

use pricing::config::Config;
use serde_json::{Value, json};
use svc_kit::config::Environment;

const SERVICE: &str = "pricing";

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/contracts/env-vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read env-vectors.json"))
        .expect("env-vectors.json is JSON")
}

fn reads(variables: &Value, name: &str) -> bool {
    variables[name]["services"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s == SERVICE))
}

/// The canonical value of `name` in `cfg`, as the vectors write it.
fn value_of(cfg: &Config, name: &str) -> Value {
    let c = &cfg.common;
    let u = &cfg.upstream;
    match name {
        "PORT" => json!(c.port),
        "POLYSHOP_ENV" => json!(match c.env {
            Environment::Dev => "dev",
            Environment::Prod => "prod",
        }),
        "REDIS_URL" => json!(c.redis_url),
        "INVENTORY_URL" => json!(cfg.inventory_url),
        "INVENTORY_URLS" => json!(cfg.inventory_shards),
        "LOG_LEVEL" => json!(c.log_level),
        "ADMIN_TOKEN" => json!(c.admin_token),
        "UPSTREAM_TIMEOUT_MS" => json!(u.timeout.as_millis() as u64),
        "UPSTREAM_RETRIES" => json!(u.retries),
        "BREAKER_FAILURES" => json!(u.breaker_failures),
        "BREAKER_SUCCESSES" => json!(u.breaker_successes),
        "BREAKER_COOLDOWN_S" => json!(u.breaker_cooldown.as_secs()),
        "MAX_BODY_BYTES" => json!(c.max_body_bytes),
        "FAULT_DELAY_MS" => json!(c.fault_delay_ms),
        "FAULT_ERROR_RATE" => json!(c.fault_error_rate),
        "INSTANCE_ID" => json!(c.instance_id),
        "ADVERTISE_URL" => json!(c.advertise_url),
        "REGISTRY_URL" => json!(c.registry_url),
        other => panic!("pricing does not read {other}"),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[test]
fn every_env_vector_pricing_reads() {
    let doc = vectors();
    let variables = &doc["variables"];
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in doc["cases"].as_array().expect("cases") {
        let env: HashMap<String, String> = case["env"]
            .as_object()
            .expect("env")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("env value").to_owned()))
            .collect();
        if !env.keys().all(|k| reads(variables, k)) {
            continue;
        }
        ran += 1;
        let result = Config::from_lookup(|k| env.get(k).cloned());
        match (&case["error"], result) {
            (Value::String(var), Err(err)) => {
                let line = err.to_string();
                if err.var != var || !line.contains(var.as_str()) || line.contains('\n') {
                    failures.push(format!(
                        "{case}: wanted an error naming {var}, got {line:?}"
                    ));
                }
            }
            (Value::String(var), Ok(_)) => failures.push(format!(
                "{case}: wanted an error naming {var}, got a config"
            )),
            (_, Err(err)) => failures.push(format!("{case}: unexpected error {err}")),
            (_, Ok(cfg)) => {
                for (name, want) in case["expect"].as_object().expect("expect") {
                    if !reads(variables, name) {
                        continue;
                    }
                    let want = match want {
                        Value::Object(per) => per.get(SERVICE).cloned().unwrap_or(Value::Null),
                        v => v.clone(),
                    };
                    let got = value_of(&cfg, name);
                    if !same(&got, &want) {
                        failures.push(format!("{case}: {name} = {got}, want {want}"));
                    }
                }
            }
        }
    }
    assert!(ran >= 250, "only {ran} vectors ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} env vectors fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
