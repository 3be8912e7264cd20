//! `cargo xtask up`: a local gateway on 127.0.0.1:8080, supervised until Ctrl-C.
//!
//! For now the stack is Envoy in front of the smoke pieces from `switchyard-conformance`
//! (`switchyard-smoke-stack`: the test ext_proc server and backends `a` and `b`). Every piece
//! is a [`ChildProcess`]; if one dies the rest are stopped and its last log lines printed.
//! Logs and the rendered Envoy config stay in `target/up/` for reading afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_conformance::backend::BACKEND_HEADER;
use switchyard_conformance::client::HttpClient;
use switchyard_conformance::envoy::bootstrap::{Bootstrap, ExtProc, MODEL_HEADER, Route};
use switchyard_conformance::envoy::{Envoy, EnvoyOptions};
use switchyard_conformance::ports;
use switchyard_conformance::process::{ChildProcess, Supervised, TAIL_LINES, supervise};
use tokio::signal::unix::{SignalKind, signal};

use crate::steps::cargo;
use crate::tools;

/// The smoke-stack binary and the header its ext_proc server copies into the model header.
const SMOKE_BIN: &str = "switchyard-smoke-stack";
const ROUTE_HEADER: &str = "x-route-to";
/// How long a child server gets to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(clap::Args)]
pub struct Args {
    /// Port of the gateway listener on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

pub fn run(root: &Path, args: &Args) -> Result<()> {
    tools::install_all(root)?;
    let envoy = tools::tools_dir(root).join(tools::ENVOY.bin);
    let smoke = build_smoke_stack(root)?;
    // A current-thread runtime: children are spawned from this (main) thread, which is the
    // thread their parent-death signal is tied to.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(root, args, envoy, smoke))
}

fn build_smoke_stack(root: &Path) -> Result<PathBuf> {
    println!("building {SMOKE_BIN}");
    let out = cargo(root)
        .args(["build", "-p", "switchyard-conformance", "--bin", SMOKE_BIN])
        .arg("--message-format=json-render-diagnostics")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("building {SMOKE_BIN} failed ({})", out.status);
    }
    // Cargo reports each artifact as a JSON line; the binary's path is in `executable`.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == SMOKE_BIN)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo build did not report the {SMOKE_BIN} executable"))
}

async fn serve(root: &Path, args: &Args, envoy_bin: PathBuf, smoke_bin: PathBuf) -> Result<()> {
    let dir = root.join("target").join("up");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let ext_proc_addr = ports::free_addr()?;
    let backends: [(&str, SocketAddr); 2] =
        [("a", ports::free_addr()?), ("b", ports::free_addr()?)];
    let mut cmd = Command::new(&smoke_bin);
    cmd.arg("--ext-proc").arg(ext_proc_addr.to_string());
    for (name, addr) in &backends {
        cmd.arg("--backend").arg(format!("{name}={addr}"));
    }
    cmd.args(["--route-header", ROUTE_HEADER]);
    let mut smoke = ChildProcess::spawn("smoke-stack", &cmd, &dir.join("smoke-stack.log"))?;
    for addr in std::iter::once(ext_proc_addr).chain(backends.iter().map(|(_, a)| *a)) {
        ports::wait_for_tcp(&mut smoke, addr, START_TIMEOUT).await?;
    }

    let mut bootstrap = Bootstrap::new()
        .listener(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .ext_proc(ExtProc::new("smoke", ext_proc_addr));
    for (name, addr) in &backends {
        let model = format!("model-{name}");
        bootstrap = bootstrap.route(Route::on_header(&model, MODEL_HEADER, &model, &[*addr]));
    }
    let options = EnvoyOptions {
        binary: Some(envoy_bin),
        work_dir: Some(dir.join("envoy")),
        ..EnvoyOptions::default()
    };
    let mut envoy = Envoy::start_with(&bootstrap, options)
        .await
        .context("starting Envoy")?;
    self_check(&envoy).await?;
    print_banner(root, &envoy, &smoke, ext_proc_addr, &backends);

    let outcome = {
        let mut children = [envoy.process_mut(), &mut smoke];
        supervise(&mut children, shutdown_signal()).await?
    };
    let result = match outcome {
        Supervised::Shutdown => {
            println!("\nstopping");
            Ok(())
        }
        Supervised::ChildExited { index, status } => {
            let child: &ChildProcess = if index == 0 {
                envoy.process_mut()
            } else {
                &smoke
            };
            let message = format!(
                "{} (pid {}) exited with {status}; stopping the rest. Last lines of {}:\n{}",
                child.name(),
                child.pid(),
                child.log_path().display(),
                child.log_tail(TAIL_LINES)
            );
            Err(anyhow::anyhow!(message))
        }
    };
    for child in [envoy.process_mut(), &mut smoke] {
        let status = child.stop()?;
        println!("{} (pid {}) stopped: {status}", child.name(), child.pid());
    }
    result
}

/// One request per route through the gateway, so `up` only reports success when routing
/// really works.
async fn self_check(envoy: &Envoy) -> Result<()> {
    let client = HttpClient::new();
    for backend in ["a", "b"] {
        let model = format!("model-{backend}");
        let response = client
            .get(&envoy.url("/self-check"), &[(ROUTE_HEADER, model.as_str())])
            .await?;
        if response.header(BACKEND_HEADER) != Some(backend) {
            bail!(
                "self-check: {ROUTE_HEADER}: {model} was answered {} by {:?}, not backend {backend}; \
                 Envoy log tail:\n{}",
                response.status,
                response.header(BACKEND_HEADER),
                envoy.log_tail(TAIL_LINES)
            );
        }
    }
    Ok(())
}

fn print_banner(
    root: &Path,
    envoy: &Envoy,
    smoke: &ChildProcess,
    ext_proc: SocketAddr,
    backends: &[(&str, SocketAddr)],
) {
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let gw = format!("http://{}", envoy.listener_addr());
    println!("\nSwitchyard local gateway is up (smoke stack: test ext_proc server + 2 backends)\n");
    println!("  {:<12} {:<28} pid {}", "gateway", gw, envoy.pid());
    println!("  {:<12} http://{}", "envoy admin", envoy.admin_addr());
    println!(
        "  {:<12} {:<28} pid {}",
        "ext_proc",
        format!("{ext_proc} (gRPC)"),
        smoke.pid()
    );
    for (name, addr) in backends {
        println!(
            "  {:<12} {:<28} pid {}",
            format!("backend {name}"),
            addr,
            smoke.pid()
        );
    }
    println!("  {:<12} {}", "envoy config", rel(envoy.config_path()));
    println!(
        "  {:<12} {}, {}",
        "logs",
        rel(envoy.log_path()),
        rel(smoke.log_path())
    );
    println!("\nThe ext_proc server copies `{ROUTE_HEADER}` (or the JSON body's `model`) into");
    println!("`{MODEL_HEADER}` and clears Envoy's route cache; Envoy routes on that header:\n");
    println!("  curl -i -H '{ROUTE_HEADER}: model-a' {gw}/v1/chat        # backend a");
    println!("  curl -i -H '{ROUTE_HEADER}: model-b' {gw}/v1/chat        # backend b");
    println!(
        "  curl -i -H 'content-type: application/json' -d '{{\"model\":\"model-b\"}}' {gw}/v1/completions  # backend b"
    );
    println!("  curl -i {gw}/v1/chat                                 # no model: 404");
    println!("\nCtrl-C stops everything.");
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = signal(SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(err) => {
            eprintln!("no SIGTERM handler ({err}); only Ctrl-C stops the gateway");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
