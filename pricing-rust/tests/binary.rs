//! The real `pricing` binary: bad config exits 2 with one line naming the variable, the
//! effective config is logged once with secrets masked, and SIGTERM drains in-flight
//! requests before a clean exit.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pricing");

fn run_with(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pricing")
}

#[test]
fn bad_config_exits_2_with_one_line() {
    for (env, var) in [
        (vec![("PORT", "80x")], "PORT"),
        (vec![("UPSTREAM_TIMEOUT_MS", "0")], "UPSTREAM_TIMEOUT_MS"),
        (vec![("INVENTORY_URL", "ftp://x")], "INVENTORY_URL"),
        (
            vec![("INVENTORY_URL", "https://inventory:8002")],
            "INVENTORY_URL",
        ),
        (vec![("PORT", "+8001")], "PORT"),
        (vec![("ADMIN_TOKEN", "two words")], "ADMIN_TOKEN"),
        (vec![("POLYSHOP_ENV", "prod")], "ADMIN_TOKEN"),
        (
            vec![
                ("POLYSHOP_ENV", "prod"),
                ("ADMIN_TOKEN", "t"),
                ("FAULT_DELAY_MS", "5"),
            ],
            "FAULT_DELAY_MS",
        ),
    ] {
        let out = run_with(&env);
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn logs_config_masked_and_drains_in_flight_requests_on_sigterm() {
    let port = common::free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("PORT", port.to_string())
        .env("ADMIN_TOKEN", "tok-secret-1")
        .env("FAULT_DELAY_MS", "400")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let start = Instant::now();
    while http_get(port, "/ready").is_none_or(|r| !r.contains("\"ready\"")) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pricing never became ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A slow request (FAULT_DELAY_MS) is in flight when SIGTERM arrives.
    let slow = std::thread::spawn(move || http_get(port, "/api/stats"));
    std::thread::sleep(Duration::from_millis(100));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let answer = slow.join().expect("thread").expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("pricing-service"));
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");

    let lines = lines.join().expect("lines");
    let config: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(r#""msg":"config""#))
        .collect();
    assert_eq!(config.len(), 1, "{lines:?}");
    assert!(config[0].contains(r#""ADMIN_TOKEN":"***""#) && !config[0].contains("tok-secret-1"));
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).expect("every line is JSON");
        assert!(
            v["ts"].is_string()
                && v["level"].is_string()
                && v["service"] == "pricing"
                && v["msg"].is_string(),
            "{l}"
        );
    }
    assert!(lines.iter().any(|l| l.contains(r#""msg":"shutdown""#)));
    let access: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(r#""msg":"request""#))
        .collect();
    assert_eq!(
        access.len(),
        1,
        "only the API request is access-logged: {access:?}"
    );
    assert!(access[0].contains(r#""route":"/api/stats""#) && access[0].contains(r#""request_id""#));
}

/// The registry entry of the real binary (REGISTRY_URL with the memory store): written once
/// it listens, with ADVERTISE_URL; SIGTERM removes it before the drain, while a slow
/// request is still being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_deregisters_before_draining_on_sigterm() {
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    let mut conn = redis.conn().await;
    let port = common::free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("PORT", port.to_string())
        .env("REGISTRY_URL", redis.url())
        .env("ADVERTISE_URL", format!("http://pricing-7.local:{port}/"))
        .env("FAULT_DELAY_MS", "3000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut entries: std::collections::HashMap<String, String> = Default::default();
    let start = Instant::now();
    while entries.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never registered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        entries = redis::cmd("HGETALL")
            .arg("polyshop:registry")
            .query_async(&mut conn)
            .await
            .expect("HGETALL");
    }
    let (field, value) = entries.iter().next().expect("one entry");
    let v: serde_json::Value = serde_json::from_str(value).expect("JSON");
    assert_eq!(
        field,
        &format!("pricing/{}", v["instance_id"].as_str().expect("id"))
    );
    assert_eq!(v["url"], format!("http://pricing-7.local:{port}"));
    assert_eq!(
        (&v["name"], &v["language"]),
        (&"pricing".into(), &"rust".into())
    );
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["shard"].is_null());

    let slow = std::thread::spawn(move || http_get(port, "/api/stats"));
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let start = Instant::now();
    loop {
        let left: u64 = redis::cmd("ZCARD")
            .arg("polyshop:registry:expiry")
            .query_async(&mut conn)
            .await
            .expect("ZCARD");
        if left == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still registered after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hlen: u64 = redis::cmd("HLEN")
        .arg("polyshop:registry")
        .query_async(&mut conn)
        .await
        .expect("HLEN");
    assert_eq!(hlen, 0);
    assert!(!slow.is_finished(), "deregistered only after the drain");
    let answer = slow.join().expect("thread").expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(child.wait().expect("wait").success());
}
