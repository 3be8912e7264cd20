//! `switchyard-smoke-stack`: the test ext_proc server and named loopback backends in one
//! process, for `cargo xtask up` to put behind Envoy. Runs until SIGTERM or SIGINT.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;
use switchyard_conformance::backend::TestBackend;
use switchyard_conformance::extproc::{Rule, TestExtProc};
use switchyard_runtime::shutdown::terminated;

#[derive(Parser)]
#[command(about = "Test ext_proc server and loopback backends for a local Envoy")]
struct Args {
    /// Address of the ext_proc gRPC server.
    #[arg(long)]
    ext_proc: SocketAddr,
    /// A backend as NAME=ADDR; repeat for more.
    #[arg(long = "backend", value_parser = parse_backend, required = true)]
    backends: Vec<(String, SocketAddr)>,
    /// Request header the ext_proc server copies into x-gateway-inference-model.
    #[arg(long, default_value = "x-route-to")]
    route_header: String,
    /// JSON body field used when the header is absent.
    #[arg(long, default_value = "model")]
    body_field: String,
}

fn parse_backend(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=ADDR, got {text:?}"))?;
    let addr = addr
        .parse()
        .map_err(|e| format!("bad address in {text:?}: {e}"))?;
    Ok((name.to_owned(), addr))
}

#[tokio::main]
async fn main() -> Result<()> {
    // Output goes to a log file that `cargo xtask up` tails: no colour codes.
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();

    let rule = Rule::copy_header(&args.route_header).or_body_field(&args.body_field);
    let ext_proc = TestExtProc::start_on(args.ext_proc, rule)
        .await
        .context("starting the ext_proc server")?;
    tracing::info!(addr = %ext_proc.addr(), header = %args.route_header, field = %args.body_field, "ext_proc server listening");
    let mut backends = Vec::new();
    for (name, addr) in &args.backends {
        let backend = TestBackend::start_on(name.clone(), *addr)
            .await
            .with_context(|| format!("starting backend {name}"))?;
        tracing::info!(backend = %name, addr = %backend.addr(), "backend listening");
        backends.push(backend);
    }

    terminated("the smoke stack").await;
    tracing::info!("stopping");
    Ok(())
}
