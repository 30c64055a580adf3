//! The pricing binary: config -> telemetry -> state -> bind -> register -> serve until
//! SIGTERM/SIGINT, which deregisters first, stops the ring refresh and then drains.

use svc_kit::registry::Heartbeat;
use svc_kit::{or_exit, telemetry};

#[tokio::main]
async fn main() {
    let cfg = or_exit(pricing::Config::from_env());
    telemetry::init(pricing::SERVICE, cfg.common.log_level);
    telemetry::log_config(&cfg.effective());
    let state = match pricing::start(&cfg).await {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(error = %err, "startup failed");
            std::process::exit(1);
        }
    };
    let inventory = state.inventory.clone();
    let app = pricing::app(state);
    let listener = match svc_kit::bind(cfg.common.port).await {
        Ok(l) => l,
        Err(err) => {
            tracing::error!(error = %err, "bind failed");
            std::process::exit(1);
        }
    };
    let heartbeat = Heartbeat::start(&cfg.common, pricing::registry_entry(&cfg));
    let shutdown = async move {
        svc_kit::shutdown_signal().await;
        heartbeat.stop().await; // routers stop picking this instance while it drains
        inventory.stop().await; // the view in hand serves the drain
    };
    if let Err(err) = svc_kit::serve_listener(listener, app, shutdown).await {
        tracing::error!(error = %err, "server failed");
        std::process::exit(1);
    }
}
