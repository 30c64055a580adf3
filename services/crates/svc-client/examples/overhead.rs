// Owns a quick measurement of what svc-client adds per call over a bare reqwest client:
// N sequential GETs against a local axum hello server, both ways, mean and p99 printed.
// Run: cargo run --release -p svc-client --example overhead [N]   (127.0.0.1 only, bounded)
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use svc_client::{CallContext, ClientMetrics, Upstream, UpstreamConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let app = Router::new().route("/x", get(|| async { r#"{"ok":true}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}");

    let bare = reqwest::Client::builder().no_proxy().build().unwrap();
    let registry = prometheus::Registry::new();
    let metrics = ClientMetrics::register(&registry).unwrap();
    let up = Upstream::new("bench", &url, &UpstreamConfig::default(), &metrics).unwrap();
    let ctx = CallContext {
        request_id: "bench".into(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        deadline: Some(Instant::now() + Duration::from_secs(3600)),
        inner_hop: true,
    };

    for round in 0..2 {
        let mut bare_times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = bare.get(format!("{url}/x")).send().await.unwrap();
            r.bytes().await.unwrap();
            bare_times.push(t.elapsed());
        }
        let mut client_times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            up.get("/x", &ctx).await.unwrap();
            client_times.push(t.elapsed());
        }
        if round == 1 {
            report("bare reqwest", &mut bare_times);
            report("svc-client  ", &mut client_times);
        }
    }
}

fn report(name: &str, times: &mut [Duration]) {
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let p99 = times[times.len() * 99 / 100];
    println!(
        "{name}: {} calls, mean {:?}, p99 {:?}",
        times.len(),
        mean,
        p99
    );
}
