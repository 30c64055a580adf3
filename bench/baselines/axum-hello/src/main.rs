//! Bare axum baseline for `make bench`: the cheapest JSON answer axum gives, so pricing's
//! numbers can be read as a ratio of what the framework can do on this machine.
use axum::{Json, Router, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "9101".into());
    let app = Router::new().route(
        "/",
        get(|| async { Json(serde_json::json!({"message": "hello"})) }),
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await
}
