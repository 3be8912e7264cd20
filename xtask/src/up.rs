//! `cargo xtask up [DIR]`: the whole inference gateway on this machine, from a directory of
//! Gateway API and inference manifests plus its `local-endpoints.yaml` (default
//! `conformance/examples/quickstart/`).
//!
//! Builds the release binaries, installs Envoy, then starts the simulator replicas, one BBR,
//! one endpoint picker per InferencePool and Envoy on 127.0.0.1:8080, each one health-checked
//! before the next starts (simulators `GET /health/ready`, BBR and pickers
//! `grpc.health.v1`, Envoy `/ready` with the listener bound). Then either serves until Ctrl-C
//! (or until a child dies, printing its last log lines) or, with `--smoke`, sends a mixed
//! sample load, prints a table and exits 0 only if every request succeeded. Logs and the
//! generated configuration stay in `target/up/` for reading afterwards. Unless
//! `--no-rollout` (or `--smoke`) is given, the rollout controller runs beside them in
//! local mode, on a copy of the directory (`target/up/manifests`) so that the weights
//! it writes never edit the directory given.

mod banner;
mod smoke;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_local::plan::PlanOptions;
use switchyard_local::process::{ChildProcess, Supervised, TAIL_LINES, supervise};
use switchyard_local::running::{RunningStack, StackOptions};
use switchyard_local::stack::LocalStack;
use switchyard_runtime::shutdown::terminated;

use crate::steps::cargo;
use crate::tools;

/// The manifest directory used when none is given.
const DEFAULT_DIR: &str = "conformance/examples/quickstart";
/// The binaries `up` runs, built in release mode.
const PACKAGES: [&str; 3] = ["switchyard-sim", "switchyard-bbr", "switchyard-epp"];
/// The rollout controller, built and started unless `--no-rollout`.
const ROLLOUT_PACKAGE: &str = "switchyard-rollout";
/// How long one process may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct Args {
    /// Directory of manifests (Gateway, HTTPRoutes, InferencePools, objectives, rewrites) and
    /// its local-endpoints.yaml.
    #[arg(default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Port of the gateway listener on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Port of Envoy's admin API on 127.0.0.1.
    #[arg(long, default_value_t = 19000)]
    admin_port: u16,
    /// First of the consecutive ports handed to simulators, BBR and pickers.
    #[arg(long, default_value_t = 8100)]
    first_port: u16,
    /// Send a mixed sample load, print a table and exit (0 only if every request succeeded).
    #[arg(long)]
    smoke: bool,
    /// How many requests `--smoke` sends.
    #[arg(long, default_value_t = 120, requires = "smoke")]
    smoke_requests: usize,
    /// Do not run the rollout controller. By default `switchyard-rollout serve --local`
    /// runs on a copy of DIR (target/up/manifests): it moves the HTTPRoute weights of the
    /// InferenceRollouts by rewriting the copy's route files and applies them to Envoy,
    /// judging each step on the pickers' metrics. Its status is kept in
    /// target/up/rollout-state, its log in target/up/rollout.log, and its admin API
    /// (127.0.0.1:9443) takes the token in target/up/rollout-token.
    #[arg(long)]
    no_rollout: bool,
}

impl Args {
    /// Whether the rollout controller runs: not with `--no-rollout`, nor with `--smoke`
    /// (which exits after its sample load).
    fn rollout(&self) -> bool {
        !self.no_rollout && !self.smoke
    }
}

pub fn run(root: &Path, args: &Args) -> Result<()> {
    let dir = resolve_dir(root, &args.dir)?;
    let options = PlanOptions {
        listener_port: args.port,
        admin_port: args.admin_port,
        first_port: args.first_port,
        ..PlanOptions::default()
    };
    // Read and check the manifests before the slow steps, so a mistake shows at once.
    let stack = LocalStack::load(&dir, &options)
        .with_context(|| format!("loading the manifests in {}", dir.display()))?;
    for warning in stack.config.warnings() {
        println!("warning: {warning}");
    }
    tools::install_all(root)?;
    let envoy = tools::tools_dir(root).join(tools::ENVOY.bin);
    let binaries = build_release(root, args.rollout())?;
    check_ports_free(&stack)?;

    let run_dir = root.join("target").join("up");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("clearing {}", run_dir.display()))?;
    }
    let stack_options = StackOptions {
        binaries,
        envoy,
        run_dir,
        start_timeout: START_TIMEOUT,
    };
    // A current-thread runtime: children are spawned from this (main) thread, which is the
    // thread their parent-death signal is tied to.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(root, &dir, stack, &stack_options, args))
}

/// `DIR` as given (relative to the current directory), else relative to the workspace root
/// (so the default works from any directory).
fn resolve_dir(root: &Path, dir: &Path) -> Result<PathBuf> {
    if dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    let under_root = root.join(dir);
    if dir.is_relative() && under_root.is_dir() {
        return Ok(under_root);
    }
    bail!(
        "{} is not a directory: give a directory holding the manifests and {}",
        dir.display(),
        switchyard_local::FILE_NAME
    )
}

/// `cargo build --release` of the three binaries (and the rollout controller with
/// `rollout`); returns the directory holding them.
fn build_release(root: &Path, rollout: bool) -> Result<PathBuf> {
    let mut packages = PACKAGES.to_vec();
    if rollout {
        packages.push(ROLLOUT_PACKAGE);
    }
    println!("building release binaries: {}", packages.join(", "));
    let mut cmd = cargo(root);
    cmd.args(["build", "--release", "--bins"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    let out = cmd
        .arg("--message-format=json-render-diagnostics")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("building the release binaries failed ({})", out.status);
    }
    // Cargo reports each artifact as a JSON line; the binary's path is in `executable`.
    let epp = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .find(|path| path.file_name().is_some_and(|n| n == "switchyard-epp"))
        .context("cargo build did not report the switchyard-epp executable")?;
    epp.parent()
        .map(Path::to_path_buf)
        .context("the switchyard-epp executable has no parent directory")
}

/// Every planned port must be free, or a process would fail to bind with a less helpful
/// message (or, worse, the gateway would talk to a stranger's server).
fn check_ports_free(stack: &LocalStack) -> Result<()> {
    let plan = &stack.plan;
    let mut addrs = vec![plan.gateway.listener, plan.gateway.admin];
    addrs.extend([plan.bbr.grpc, plan.bbr.health, plan.bbr.metrics]);
    for pool in &plan.pools {
        addrs.extend(
            pool.simulators
                .iter()
                .flat_map(|s| s.endpoints.iter().copied()),
        );
        addrs.extend([pool.picker.grpc, pool.picker.health, pool.picker.metrics]);
    }
    let busy: Vec<String> = addrs
        .iter()
        .filter(|addr| TcpListener::bind(addr).is_err())
        .map(ToString::to_string)
        .collect();
    if !busy.is_empty() {
        bail!(
            "these addresses are in use: {}. Stop whatever holds them (another `cargo xtask up`?) \
             or move the gateway with --port, --admin-port and --first-port",
            busy.join(", ")
        );
    }
    Ok(())
}

async fn serve(
    root: &Path,
    dir: &Path,
    stack: LocalStack,
    options: &StackOptions,
    args: &Args,
) -> Result<()> {
    println!("\nstarting the local gateway from {}", dir.display());
    let mut running = RunningStack::start(stack, options, |process, took| {
        println!(
            "  ready  {:<34} pid {:<8} {:>6} ms",
            process.spec.name,
            process.child.pid(),
            took.as_millis()
        );
    })
    .await
    .context("starting the local gateway")?;
    println!("  ready  {:<34} pid {:<8}", "envoy", running.envoy.pid());

    if args.smoke {
        let report = smoke::run(&running, args.smoke_requests).await?;
        println!("\n{}", report.table());
        return if report.all_succeeded() {
            println!("smoke: all {} requests succeeded", report.total());
            Ok(())
        } else {
            bail!(
                "smoke: {} of {} requests failed; logs are in {}",
                report.failed(),
                report.total(),
                running.run_dir().display()
            )
        };
    }

    banner::print(root, &running);
    let mut rollout = if args.rollout() {
        let child = start_rollout(dir, options, args)?;
        let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
        println!(
            "rollout controller pid {} (local mode on a copy of {} in {}; log {})\n  \
             status: cat {}/*.status.json\n  \
             admin:  ROLLOUT_TOKEN=$(cut -d' ' -f1 {}) target/release/switchyard-rollout get default/<name>",
            child.pid(),
            rel(dir),
            rel(&options.run_dir.join("manifests")),
            rel(child.log_path()),
            rel(&options.run_dir.join("rollout-state")),
            rel(&options.run_dir.join("rollout-token")),
        );
        Some(child)
    } else {
        None
    };
    let mut children = running.children_mut();
    if let Some(child) = rollout.as_mut() {
        children.push(child);
    }
    let outcome = supervise(&mut children, terminated("the gateway")).await?;
    match outcome {
        Supervised::Shutdown => {
            println!("\nstopping");
            Ok(())
        }
        Supervised::ChildExited { index, status } => {
            let Some(child) = children.get(index) else {
                bail!("a child exited with {status}; stopping the rest");
            };
            bail!(
                "{} (pid {}) exited with {status}; stopping the rest. Last lines of {}:\n{}",
                child.name(),
                child.pid(),
                child.log_path().display(),
                child.log_tail(TAIL_LINES)
            )
        }
    }
}

/// `switchyard-rollout serve --local`, on a copy of `dir` (its weights are written there,
/// never into `dir`), told the stack's ports so that its translation matches the running
/// Envoy's clusters, with its admin API behind a freshly generated token.
fn start_rollout(dir: &Path, options: &StackOptions, args: &Args) -> Result<ChildProcess> {
    let manifests = options.run_dir.join("manifests");
    copy_manifests(dir, &manifests)?;
    let token_file = options.run_dir.join("rollout-token");
    std::fs::write(&token_file, format!("{} local-admin\n", random_token()?))
        .with_context(|| format!("writing {}", token_file.display()))?;
    let mut cmd = std::process::Command::new(options.binaries.join(ROLLOUT_PACKAGE));
    cmd.arg("serve")
        .arg("--local")
        .arg(&manifests)
        .arg("--local-envoy-dir")
        .arg(options.run_dir.join("envoy"))
        .arg("--local-state-dir")
        .arg(options.run_dir.join("rollout-state"))
        .arg("--admin-token-file")
        .arg(&token_file)
        .args(["--local-port", &args.port.to_string()])
        .args(["--local-admin-port", &args.admin_port.to_string()])
        .args(["--local-first-port", &args.first_port.to_string()]);
    ChildProcess::spawn(ROLLOUT_PACKAGE, &cmd, &options.run_dir.join("rollout.log"))
        .context("starting the rollout controller")
}

/// Copies the YAML files of `dir` into `to`.
fn copy_manifests(dir: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if let (true, Some(name)) = (is_yaml && path.is_file(), path.file_name()) {
            std::fs::copy(&path, to.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

/// 32 hex characters from the kernel's random source.
fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("reading /dev/urandom for the admin token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
