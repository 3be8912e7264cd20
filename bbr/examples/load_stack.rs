//! The stack behind the load figures in docs/performance.md: one backend, BBR, and two Envoys
//! side by side — "plain" routes on a client-set header with no ext_proc filter, "bbr" has BBR
//! (BUFFERED) set the header from the body. Prints both URLs and runs until Ctrl-C.
//!
//! ```sh
//! cargo run --release -p switchyard-bbr --example load_stack
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use switchyard_bbr::config::RouterConfig;
use switchyard_bbr::server::{self, Options};
use switchyard_conformance::backend::TestBackend;
use switchyard_conformance::envoy::Envoy;
use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let backend = TestBackend::start("a").await?;
    let bbr = server::start(Options {
        config: RouterConfig::default(),
        grpc_addr: any,
        health_addr: any,
        metrics_addr: any,
        base_model_file: None,
        config_maps: None,
        drain_timeout: Duration::from_secs(5),
    })
    .await?;
    let route = Route::on_header("model-a", MODEL_HEADER, "model-a", &[backend.addr()]);
    let plain = Envoy::start(&Bootstrap::new().route(route.clone())).await?;
    let with_bbr = Envoy::start(
        &Bootstrap::new()
            .ext_proc(ExtProc::new("bbr", bbr.grpc_addr))
            .route(route),
    )
    .await?;
    println!("plain {}", plain.url("/v1/chat/completions"));
    println!("bbr {}", with_bbr.url("/v1/chat/completions"));
    println!("metrics http://{}/metrics", bbr.metrics_addr);
    tokio::signal::ctrl_c().await?;
    bbr.shutdown().await?;
    Ok(())
}
