//! The pricing binary: config -> telemetry -> state -> serve until SIGTERM/SIGINT.

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
    let app = pricing::app(state);
    if let Err(err) = svc_kit::serve(app, cfg.common.port, svc_kit::shutdown_signal()).await {
        tracing::error!(error = %err, "server failed");
        std::process::exit(1);
    }
}
