//! `switchyard-bbr`: parses flags, sets up logging, starts the servers and drains on SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use switchyard_bbr::server::cli::{Args, LogFormat};
use switchyard_bbr::server::{self, Options};
use tracing_subscriber::EnvFilter;

fn init_logging(args: &Args) {
    let level = match args.verbosity {
        0 | 1 => "info",
        2 | 3 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops BBR");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args);
    let config = args.router_config()?;
    let [grpc_addr, health_addr, metrics_addr] = args.addresses()?;
    let tls = args.cert_source()?;
    let config_maps = if args.watch_configmaps {
        let client = kube::Client::try_default().await.context(
            "--watch-configmaps needs a Kubernetes client: run in a pod with a service account, \
             or set KUBECONFIG",
        )?;
        Some((client, args.namespace()))
    } else {
        None
    };
    let mut running = server::start(Options {
        config,
        grpc_addr,
        health_addr,
        metrics_addr,
        base_model_file: args
            .base_model_file
            .clone()
            .map(|path| (path, args.poll_interval())),
        config_maps,
        drain_timeout: Duration::from_secs(args.drain_timeout_seconds),
        tls,
    })
    .await?;
    tokio::select! {
        () = terminated() => {
            tracing::info!("termination signal received; draining");
            running.shutdown().await?;
        }
        failed = running.wait_for_failure() => failed?,
    }
    Ok(())
}
