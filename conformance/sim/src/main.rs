//! `switchyard-sim`: serves `--replicas` simulated model servers on consecutive ports until
//! interrupted (SIGINT or SIGTERM).

use clap::Parser;
use switchyard_runtime::log::{self, LogFormat};
use switchyard_runtime::shutdown::terminated;
use switchyard_sim::cli::Cli;
use switchyard_sim::http::spawn_replica;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), switchyard_sim::SimError> {
    let cli = Cli::parse();
    let format = if cli.log_json {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    log::init(format, "info");

    let mut replicas = Vec::new();
    for i in 0..cli.replicas.max(1) {
        let opts = cli.replica(i)?;
        let port = cli.port.checked_add(i).ok_or_else(|| {
            switchyard_sim::SimError::Config(format!("port {} + {i} overflows", cli.port))
        })?;
        let listener = TcpListener::bind((cli.host.as_str(), port)).await?;
        replicas.push(spawn_replica(listener, opts)?);
    }
    tracing::info!(
        replicas = replicas.len(),
        first_port = cli.port,
        "simulator ready"
    );

    terminated("the simulator").await;
    tracing::info!("shutting down");
    for r in &replicas {
        r.shutdown();
    }
    Ok(())
}
