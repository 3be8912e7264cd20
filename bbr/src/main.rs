//! `switchyard-bbr`: parses flags, sets up logging, starts the servers and drains on SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use switchyard_bbr::server::cli::Args;
use switchyard_bbr::server::{self, Options};
use switchyard_runtime::shutdown::terminated;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.log.init();
    let config = args.router_config()?;
    let [grpc_addr, health_addr, metrics_addr] = args.addresses()?;
    let tls = args.cert_source()?;
    let config_maps = if args.watch_configmaps {
        let client = kube::Client::try_default().await.context(
            "--watch-configmaps needs a Kubernetes client: run in a pod with a service account, \
             or set KUBECONFIG",
        )?;
        let scope = args.config_map_scope(client.default_namespace());
        tracing::info!(
            home = %scope.home,
            all_namespaces = scope.all_namespaces,
            "reading base-model ConfigMaps",
        );
        Some((client, scope))
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
        max_concurrent_streams: args.max_concurrent_streams()?,
        tls,
    })
    .await?
    .with_drain_grace(Duration::from_secs(args.drain_grace_period_seconds));
    tokio::select! {
        () = terminated("BBR") => {
            tracing::info!("termination signal received; draining");
            running.shutdown().await?;
        }
        failed = running.wait_for_failure() => failed?,
    }
    Ok(())
}
