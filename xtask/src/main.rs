//! Developer tasks for the Switchyard workspace, run as `cargo xtask <task>`.
//!
//! - `tools`: install the pinned external tools (Envoy) under `target/tools/`, and build the
//!   test control plane (`kube build`).
//! - `test`: everything CI runs, in order, stopping at the first failing step.
//! - `up`: the whole inference gateway on 127.0.0.1:8080 from a manifest directory.
//! - `fuzz`: a crate's cargo-fuzz target for a bounded time.
//! - `charts`: lint, render and check the Helm charts (also a step of `test`).
//! - `whatif`: the what-if routing report over the simulated fleet (docs/routing.md).
//! - `kube`: build kube-apiserver/etcd/helm from Go modules; start or stop a control plane.
//! - `lint`: no module cycles and no source file over 500 lines (also a step of `test`).
//! - `vllm`: a real vLLM (CPU) in a cached venv with a tiny local model (`setup`, `serve`).

mod charts;
mod fuzz;
mod kube;
mod lint;
mod steps;
mod test;
mod tools;
mod up;
mod vllm;
mod whatif;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Switchyard developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the pinned tools (Envoy 1.40.0) under target/tools/ and build the test control
    /// plane (cargo xtask kube build); quick when already present.
    Tools,
    /// Run fmt, clippy, unit, integration, doc and end-to-end tests, like CI.
    Test(test::Args),
    /// Run the whole inference gateway locally (simulators, BBR, EPPs, Envoy) from manifests.
    Up(up::Args),
    /// Run a fuzz target for a bounded time (`cargo xtask fuzz bbr`); needs nightly.
    Fuzz(fuzz::Args),
    /// Lint, render and check every Helm chart over its ci/*-values.yaml matrix.
    Charts,
    /// The what-if routing report: every policy over the simulated fleet (docs/routing.md).
    Whatif(whatif::Args),
    /// A real kube-apiserver and etcd: `build` (cached Go builds), `up [--dir]`, `down [--dir]`.
    Kube(kube::Args),
    /// Fail on module cycles and on non-test source files over 500 lines, in every crate.
    Lint {
        /// The tree to check (another checkout, say); the workspace root by default.
        dir: Option<PathBuf>,
    },
    /// Real vLLM (CPU): `setup` installs it with a tiny local model, `serve` starts a server.
    Vllm(vllm::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Tools => tools::install_all(&workspace_root()).map(|_| ()),
        Task::Test(args) => test::run(&workspace_root(), &args),
        Task::Up(args) => up::run(&workspace_root(), &args),
        Task::Fuzz(args) => fuzz::run(&workspace_root(), &args),
        Task::Charts => charts::run(&workspace_root()),
        Task::Whatif(args) => whatif::run(&workspace_root(), &args),
        Task::Kube(args) => kube::run(&workspace_root(), &args),
        Task::Lint { dir } => lint::run(&dir.unwrap_or_else(workspace_root)),
        Task::Vllm(args) => vllm::run(&workspace_root(), &args),
    };
    report(result)
}

/// Prints the whole error chain, so the reader sees both what failed and why.
fn report(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it, and every path we print or create is
/// anchored there so the tasks work from any current directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), PathBuf::from)
}
