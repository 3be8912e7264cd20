//! The stack behind the load figures in docs/performance.md: one backend, BBR, and two Envoys
//! side by side — "plain" routes on a client-set header with no ext_proc filter, "bbr" has BBR
//! set the header from the body. Both Envoys get the same bootstrap apart from the ext_proc
//! filter. Prints both URLs and runs until Ctrl-C.
//!
//! ```sh
//! cargo run --release -p switchyard-bbr --example bbr_load_stack -- [options]
//!   --body-mode buffered|full-duplex   request body mode of the BBR filter (default buffered)
//!   --bbr HOST:PORT                    use a BBR already running (e.g. the release binary)
//!                                      instead of one in this process
//!   --write-bootstraps DIR             write plain.json and bbr.json (listeners on 18001 and
//!                                      18002, admin on 19001 and 19002) and start no Envoy,
//!                                      to run Envoy by hand, e.g. with another --concurrency;
//!                                      also writes the load bodies body-1k.json and
//!                                      body-148k.json (chat requests, `model` last)
//! ```
//!
//! `bbr/examples/bbr_load_pairs.sh` then runs the interleaved load pairs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use switchyard_bbr::server::{self, Options};
use switchyard_conformance::backend::TestBackend;
use switchyard_conformance::envoy::Envoy;
use switchyard_conformance::envoy::bootstrap::{BodyMode, Bootstrap, ExtProc, MODEL_HEADER, Route};

struct Args {
    body_mode: BodyMode,
    bbr: Option<SocketAddr>,
    write_bootstraps: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        body_mode: BodyMode::Buffered,
        bbr: None,
        write_bootstraps: None,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--body-mode" => {
                args.body_mode = match value()?.as_str() {
                    "buffered" => BodyMode::Buffered,
                    "full-duplex" => BodyMode::FullDuplexStreamed,
                    other => bail!("--body-mode {other}: use buffered or full-duplex"),
                }
            }
            "--bbr" => args.bbr = Some(value()?.parse().context("--bbr takes HOST:PORT")?),
            "--write-bootstraps" => args.write_bootstraps = Some(value()?.into()),
            other => bail!("unknown option {other}; see the example's doc comment"),
        }
    }
    Ok(args)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A chat request of about `size` bytes (at least one sentence) whose model is `model-a`,
/// with `model` as the last key: the body the load figures use.
fn chat_body(size: usize) -> String {
    const SENTENCE: &str =
        "The scheduler picks the replica with the shortest queue and the warmest prefix cache.";
    let mut content = String::new();
    let frame = r#"{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":""}],"temperature":0.7,"stream":false,"model":"model-a"}"#;
    let mut paragraph = 0;
    while frame.len() + content.len() < size {
        content.push_str(SENTENCE);
        paragraph += 1;
        // A paragraph break (an escape) every three sentences, as in prose.
        content.push_str(if paragraph % 3 == 0 { "\\n\\n" } else { " " });
    }
    frame.replacen(r#""content":"""#, &format!(r#""content":"{content}""#), 1)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let backend = TestBackend::start("a").await?;
    let in_process = match args.bbr {
        Some(_) => None,
        None => Some(server::start(Options::on_loopback()).await?),
    };
    let bbr_addr = match (&in_process, args.bbr) {
        (Some(running), _) => running.grpc_addr,
        (None, Some(addr)) => addr,
        (None, None) => bail!("no BBR to point Envoy at"),
    };
    let mut ext_proc = ExtProc::new("bbr", bbr_addr).body_mode(args.body_mode);
    if args.body_mode == BodyMode::FullDuplexStreamed {
        // A request ending in trailers never sends body EOS; BBR needs them to finish.
        ext_proc = ext_proc.trailers(true);
    }
    let route = Route::on_header("model-a", MODEL_HEADER, "model-a", &[backend.addr()]);
    let plain = Bootstrap::new().route(route.clone());
    let with_bbr = Bootstrap::new().ext_proc(ext_proc).route(route);

    // Keeps the Envoys running until Ctrl-C.
    let mut _envoys = Vec::new();
    if let Some(dir) = &args.write_bootstraps {
        std::fs::create_dir_all(dir)?;
        let configs = [
            ("plain", plain.listener(local(18001)).admin(local(19001))),
            ("bbr", with_bbr.listener(local(18002)).admin(local(19002))),
        ];
        for (name, bootstrap) in configs {
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, bootstrap.render())?;
            println!("{name} bootstrap {}", path.display());
        }
        for (name, size) in [("body-1k", 1000), ("body-148k", 152_000)] {
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, chat_body(size))?;
            println!("{name} {}", path.display());
        }
        println!("plain http://127.0.0.1:18001/v1/chat/completions");
        println!("bbr http://127.0.0.1:18002/v1/chat/completions");
    } else {
        let plain = Envoy::start(&plain).await?;
        let with_bbr = Envoy::start(&with_bbr).await?;
        println!("plain {}", plain.url("/v1/chat/completions"));
        println!("bbr {}", with_bbr.url("/v1/chat/completions"));
        _envoys.extend([plain, with_bbr]);
    }
    if let Some(running) = &in_process {
        println!("metrics http://{}/metrics", running.metrics_addr);
    }
    switchyard_runtime::shutdown::terminated("bbr_load_stack").await;
    if let Some(running) = in_process {
        running.shutdown().await?;
    }
    Ok(())
}
