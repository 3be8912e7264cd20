//! `switchyard-epp`: parses flags, sets up logging, starts the servers with the pool source
//! (the InferencePool in Kubernetes, or `--endpoints-file`), leader election when asked, and
//! drains on SIGTERM.

use anyhow::Context;
use clap::Parser;
use switchyard_epp::cli::Args;
use switchyard_epp::scheduling::Scheduler;
use switchyard_epp::server::{self, Options, Running, wiring};
use switchyard_epp::source::k8s::KubernetesSource;
use switchyard_epp::source::standalone::StandaloneSource;
use switchyard_runtime::shutdown::terminated;

async fn kube_client(why: &str) -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.with_context(|| {
        format!(
            "{why} needs a Kubernetes client: run in a pod with a service account, or set \
             KUBECONFIG (or run standalone with --endpoints-file)"
        )
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.init_logging();
    args.ignored_flag_warnings()
        .iter()
        .for_each(|w| tracing::warn!("{w}"));
    let scheduler = Scheduler::new(args.scheduler_config()?);
    let [grpc_addr, health_addr, metrics_addr] = args.addresses()?;
    let pool_name = args.pool_name()?;
    let namespace = args.namespace();
    let options = Options {
        scheduler,
        grpc_addr,
        health_addr,
        metrics_addr,
        tls: args.cert_source(),
        disable_subset_filter: args.disable_endpoint_subset_filter,
        max_body_bytes: args.max_body_bytes,
        buffers: args.buffer_limits(),
        leader_election: args.ha_enable_leader_election,
        drain_timeout: args.drain_timeout,
        max_concurrent_streams: args.grpc_max_concurrent_streams,
        scrape: args.scrape_config()?,
        flow_control: args.flow_control_config()?,
        header_trust: args.header_trust()?,
        rewrite_session_header: args.model_rewrite_session_header.clone(),
    };
    let mut running: Running = match &args.endpoints_file {
        Some(file) => {
            let source =
                StandaloneSource::open(file.clone(), &pool_name, args.endpoints_file_poll_interval)
                    .context("loading --endpoints-file")?;
            server::start(options, source).await?
        }
        None => {
            let client = kube_client("watching the InferencePool (--pool-name)").await?;
            let source = KubernetesSource::new(client, namespace.clone(), pool_name.clone());
            server::start(options, source).await?
        }
    }
    .with_drain_grace(args.drain_grace_period);
    if args.ha_enable_leader_election {
        let client = kube_client("--ha-enable-leader-election").await?;
        let election = wiring::run_leader_election(
            client,
            namespace,
            pool_name,
            running.readiness(),
            running.step_down_token(),
        );
        running.spawn(election);
    }
    tokio::select! {
        () = terminated("the EPP") => {
            tracing::info!("termination signal received; draining");
            running.shutdown().await?;
        }
        failed = running.wait_for_failure() => failed?,
    }
    Ok(())
}
