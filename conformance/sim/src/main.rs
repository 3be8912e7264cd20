//! `switchyard-sim`: serves `--replicas` simulated model servers on consecutive ports until
//! interrupted (SIGINT or SIGTERM).

use clap::Parser;
use switchyard_sim::cli::Cli;
use switchyard_sim::http::spawn_replica;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), switchyard_sim::SimError> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

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

    shutdown_signal().await;
    tracing::info!("shutting down");
    for r in &replicas {
        r.shutdown();
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
