//! `cargo xtask kube build|up|down`: a real kube-apiserver and etcd on loopback.
//!
//! - `build`: builds kube-apiserver, etcd and helm from the Go modules pinned in `xtask/go/`
//!   (cached under `~/.cache/switchyard/kube/`) and links them with the Gateway API CRDs into
//!   `target/tools/kube/`, where the `e2e_kube_*` suites find them.
//! - `up [--dir DIR]`: builds if needed, starts etcd and kube-apiserver in the background
//!   (RBAC, TokenRequest, an admin client certificate, random free ports), waits for
//!   `/readyz`, installs the Gateway API and Switchyard CRDs and writes `DIR/kubeconfig`.
//! - `down [--dir DIR]`: stops both and removes DIR.

mod build;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process};

use crate::steps::{self, cargo};

pub use build::{build_all, helm};

/// The state directory when `--dir` is not given, relative to the workspace root.
const DEFAULT_DIR: &str = "target/kube";
/// The environment variable through which the suites find `target/tools/kube/` (the
/// harness's `switchyard_conformance::kube::bins::BIN_DIR_ENV`).
pub const BIN_DIR_ENV: &str = "SWITCHYARD_KUBE_BIN_DIR";
/// The conformance binary that starts a detached control plane.
const PLANE_BINARY: &str = "switchyard-kube-plane";
/// The file in the state directory holding both pids (written by the plane binary).
const PIDS_FILE: &str = "pids";
/// How long `down` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KubeCommand,
}

#[derive(clap::Subcommand)]
enum KubeCommand {
    /// Build (or find cached) kube-apiserver, etcd and helm; print where they are.
    Build,
    /// Start etcd and kube-apiserver in the background and write DIR/kubeconfig.
    Up {
        /// State directory (certificates, etcd data, logs, kubeconfig).
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Stop the control plane started with `up` and remove its state directory.
    Down {
        /// The directory given to `up`.
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
}

pub fn run(root: &Path, args: &Args) -> Result<()> {
    match &args.command {
        KubeCommand::Build => {
            let built = build_all(root)?;
            for line in &built.lines {
                println!("{line}");
            }
            println!(
                "binaries in {} (the e2e_kube_* suites read it; or set {})",
                built.dir.display(),
                BIN_DIR_ENV
            );
            Ok(())
        }
        KubeCommand::Up { dir } => up(root, &root.join(dir)),
        KubeCommand::Down { dir } => down(&root.join(dir)),
    }
}

fn up(root: &Path, dir: &Path) -> Result<()> {
    if let Some(pids) = read_pids(dir)? {
        if pids.iter().any(|pid| alive(*pid)) {
            bail!(
                "a control plane is already running from {} (pids {pids:?}); run `cargo xtask \
                 kube down --dir {}` first",
                dir.display(),
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing stale {}", dir.display()))?;
    }
    let built = build_all(root)?;
    for line in &built.lines {
        println!("{line}");
    }
    // The harness's starter is a binary of switchyard-conformance, built as every other step
    // builds (`--workspace`, so features unify the same way and nothing rebuilds).
    let mut build = cargo(root);
    build.args(["build", "--workspace", "--bins"]);
    if steps::in_ci() {
        build.arg("--locked");
    }
    steps::run(&mut build)?;
    let plane = debug_dir(root).join(PLANE_BINARY);
    let status = Command::new(&plane)
        .arg(dir)
        .arg(&built.dir)
        .status()
        .with_context(|| format!("running {}", plane.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", plane.display());
    }
    Ok(())
}

fn down(dir: &Path) -> Result<()> {
    let Some(pids) = read_pids(dir)? else {
        println!(
            "no control plane recorded in {}; nothing to stop",
            dir.display()
        );
        return Ok(());
    };
    for pid in &pids {
        signal(*pid, Signal::TERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while pids.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids.iter().filter(|pid| alive(**pid)) {
        signal(*pid, Signal::KILL);
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    println!("stopped pids {pids:?} and removed {}", dir.display());
    Ok(())
}

/// `target/tools/kube/`, where `build` links the binaries and the suites look for them.
/// (Spelled out rather than taken from `tools`, which calls `build_all`: no module cycle.)
pub fn link_dir(root: &Path) -> PathBuf {
    root.join("target").join("tools").join("kube")
}

/// Where `cargo build` puts debug binaries (honouring `CARGO_TARGET_DIR`).
fn debug_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
        .join("debug")
}

/// The pids `up` recorded, if it did.
fn read_pids(dir: &Path) -> Result<Option<Vec<i32>>> {
    let path = dir.join(PIDS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let pids = text
        .lines()
        .map(|line| {
            line.trim()
                .parse::<i32>()
                .with_context(|| format!("{}: `{line}` is not a pid", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(pids))
}

fn alive(pid: i32) -> bool {
    Pid::from_raw(pid).is_some_and(|pid| test_kill_process(pid).is_ok())
}

/// Signals the process group `pid` leads (each process was started as a group leader).
fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        // ESRCH only means it has exited already.
        let _ = kill_process_group(pid, signal);
    }
}
