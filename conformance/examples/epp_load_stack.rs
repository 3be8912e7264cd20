//! The stack behind the EPP load figures in docs/performance.md: simulator replicas with
//! zero step cost, BBR, the EPP (standalone endpoints file) and two Envoys side by side —
//! "plain" routes on a client-set header to a static cluster of the replicas with no ext_proc
//! filter, "epp" has BBR (BUFFERED) set the model header and the EPP (FULL_DUPLEX_STREAMED
//! both ways, trailers SEND) pick the replica for an ORIGINAL_DST cluster. Prints both URLs
//! and runs until Ctrl-C.
//!
//! ```sh
//! cargo run --release -p switchyard-conformance --example epp_load_stack -- [REPLICAS] [tls]
//! ```
//!
//! With `tls`, the EPP serves ext_proc over TLS with a self-signed certificate (upstream's
//! `--secure-serving` default) and Envoy's EPP cluster uses TLS.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use switchyard_conformance::envoy::Envoy;
use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};
use switchyard_epp::scheduling::Scheduler;
use switchyard_epp::scrape::ScrapeConfig;
use switchyard_epp::server::tls::CertSource;
use switchyard_epp::server::{self, DEFAULT_MAX_BODY_BYTES, Options};
use switchyard_epp::source::standalone::StandaloneSource;
use switchyard_sim::http::{ReplicaOptions, spawn_replica};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let replicas: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(4);
    let tls = std::env::args().nth(2).is_some_and(|a| a == "tls");
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut sims = Vec::new();
    let mut file = tempfile::NamedTempFile::new()?;
    writeln!(file, "poolName: load\nendpoints:")?;
    for i in 0..replicas {
        let mut options = ReplicaOptions::new(format!("sim-{i}"), "model-a");
        // Zero step cost: the figure measures the proxy path, not a simulated GPU.
        options.time_scale = 0.0;
        let sim = spawn_replica(TcpListener::bind(any).await?, options)?;
        writeln!(file, "- {{name: sim-{i}, address: '{}'}}", sim.addr)?;
        sims.push(sim);
    }
    file.flush()?;
    let source = StandaloneSource::open(file.path().to_owned(), "load", Duration::from_secs(1))?;
    let epp = server::start(
        Options {
            scheduler: Scheduler::default(),
            grpc_addr: any,
            health_addr: any,
            metrics_addr: any,
            tls: tls.then_some(CertSource::SelfSigned),
            disable_subset_filter: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            leader_election: false,
            drain_timeout: Duration::from_secs(5),
            max_concurrent_streams: 1000,
            scrape: ScrapeConfig::default(),
            flow_control: switchyard_epp::flow::FlowControlConfig::default(),
            header_trust: switchyard_epp::flow::HeaderTrust::Always,
            rewrite_session_header: None,
            buffers: Default::default(),
        },
        source,
    )
    .await?;
    let bbr = switchyard_bbr::server::start(switchyard_bbr::server::Options::on_loopback()).await?;
    let addrs: Vec<SocketAddr> = sims.iter().map(|s| s.addr).collect();
    let plain = Envoy::start(&Bootstrap::new().route(Route::on_header(
        "model-a",
        MODEL_HEADER,
        "model-a",
        &addrs,
    )))
    .await?;
    let with_epp = Envoy::start(
        &Bootstrap::new()
            .ext_proc(ExtProc::new("bbr", bbr.grpc_addr))
            .ext_proc(ExtProc::endpoint_picker("epp", epp.grpc_addr).tls(tls))
            .route(Route::to_pool("model-a", MODEL_HEADER, "model-a")),
    )
    .await?;
    println!("plain {}", plain.url("/v1/chat/completions"));
    println!("epp {}", with_epp.url("/v1/chat/completions"));
    println!("epp-metrics http://{}/metrics", epp.metrics_addr);
    for sim in &sims {
        println!("sim {} http://{}/metrics", sim.name, sim.addr);
    }
    switchyard_runtime::shutdown::terminated("epp_load_stack").await;
    epp.shutdown().await?;
    bbr.shutdown().await?;
    Ok(())
}
