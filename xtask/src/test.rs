//! `cargo xtask test`: the one test command, the same locally and in CI.
//!
//! Steps: install tools (and `cargo xtask vllm setup` for the real-vLLM suites), `cargo fmt --check`, clippy with `-D warnings`, the layout lint
//! (`cargo xtask lint`: module cycles, file sizes), unit and integration
//! tests, doc tests, the Helm charts (`cargo xtask charts`), then the end-to-end tests against
//! the real Envoy.
//!
//! The tools step also builds the control plane (`cargo xtask kube build`: kube-apiserver, etcd,
//! helm from Go modules, cached) and the end-to-end step exports its directory in
//! `SWITCHYARD_KUBE_BIN_DIR` for the `e2e_kube_*` suites.
//!
//! End-to-end tests are the integration-test targets of `switchyard-conformance` whose names
//! start with `e2e_` (`conformance/tests/e2e_*.rs`). They run in their own step, after the
//! other tests, with the Envoy path exported in `SWITCHYARD_ENVOY`. With cargo-nextest the
//! split is a filterset; without it, by cargo target selection.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::steps::{self, Step, cargo};
use crate::tools;

/// The package holding the end-to-end suites, and the prefix of their test targets.
const E2E_PACKAGE: &str = "switchyard-conformance";
const E2E_FILTER: &str = "package(switchyard-conformance) & binary(/^e2e_/)";
/// Where the end-to-end suites are told to find the binaries they start
/// (`switchyard-sim`, `switchyard-bbr`, `switchyard-epp`).
const E2E_BIN_DIR_ENV: &str = "SWITCHYARD_BIN_DIR";

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check`.
    #[arg(long)]
    no_fmt: bool,
    /// Skip clippy.
    #[arg(long)]
    no_clippy: bool,
    /// Skip the end-to-end tests.
    #[arg(long, conflicts_with = "e2e_only")]
    no_e2e: bool,
    /// Run only the tool install and the end-to-end tests.
    #[arg(long)]
    e2e_only: bool,
}

pub fn run(root: &Path, args: &Args) -> Result<()> {
    let nextest = steps::succeeds(cargo(root).args(["nextest", "--version"]));
    if !nextest {
        println!("cargo-nextest not found: falling back to `cargo test`");
    }
    let envoy: std::cell::OnceCell<PathBuf> = std::cell::OnceCell::new();
    let envoy = &envoy;
    // The control plane's binaries (kube-apiserver, etcd, helm), built once from Go modules.
    let kube_bins: std::cell::OnceCell<PathBuf> = std::cell::OnceCell::new();
    let kube_bins = &kube_bins;

    let vllm_home: std::cell::OnceCell<PathBuf> = std::cell::OnceCell::new();
    let vllm_home = &vllm_home;
    let mut plan: Vec<Step<'_>> = vec![Step::new("tools", move || {
        let installed = tools::install_all(root)?;
        for tool in installed {
            if tool.tool.env_var == tools::ENVOY.env_var {
                let _ = envoy.set(tool.path);
            }
        }
        // The real-vLLM suites' venv and tiny model (cached; ~2-3 min the first time).
        if !args.no_e2e {
            let _ = vllm_home.set(crate::vllm::setup(root)?.home);
        }
        // `install_all` also built the control plane's binaries (cargo xtask kube build).
        let _ = kube_bins.set(crate::kube::link_dir(root));
        Ok(())
    })];
    let with_env = move |mut cmd: Command| {
        if let Some(path) = envoy.get() {
            cmd.env(tools::ENVOY.env_var, path);
        }
        if let Some(dir) = kube_bins.get() {
            cmd.env(crate::kube::BIN_DIR_ENV, dir);
        }
        cmd
    };

    if !args.e2e_only {
        if !args.no_fmt {
            plan.push(Step::new("cargo fmt --check", move || {
                steps::run(cargo(root).args(["fmt", "--all", "--", "--check"]))
            }));
        }
        if !args.no_clippy {
            plan.push(Step::new("cargo clippy -D warnings", move || {
                let mut cmd = cargo(root);
                cmd.args(["clippy", "--workspace", "--all-targets"]);
                locked(&mut cmd);
                steps::run(cmd.args(["--", "-D", "warnings"]))
            }));
        }
        plan.push(Step::new(
            "module cycles and file sizes (cargo xtask lint)",
            move || crate::lint::run(root),
        ));
        if nextest {
            plan.push(Step::new(
                "unit and integration tests (nextest)",
                move || {
                    let mut cmd = with_env(cargo(root));
                    cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
                    cmd.args(["--no-tests", "warn", "-E"]);
                    cmd.arg(format!("not ({E2E_FILTER})"));
                    locked(&mut cmd);
                    steps::run(&mut cmd)
                },
            ));
        } else {
            plan.push(Step::new(
                "unit and integration tests (cargo test)",
                move || {
                    let mut cmd = with_env(cargo(root));
                    cmd.args([
                        "test",
                        "--workspace",
                        "--no-fail-fast",
                        "--exclude",
                        E2E_PACKAGE,
                    ]);
                    locked(&mut cmd);
                    steps::run(&mut cmd)?;
                    let mut cmd = with_env(cargo(root));
                    cmd.args([
                        "test",
                        "--no-fail-fast",
                        "-p",
                        E2E_PACKAGE,
                        "--lib",
                        "--bins",
                    ]);
                    locked(&mut cmd);
                    steps::run(&mut cmd)
                },
            ));
        }
        plan.push(Step::new("doc tests", move || {
            let mut cmd = cargo(root);
            cmd.args(["test", "--workspace", "--doc"]);
            locked(&mut cmd);
            steps::run(&mut cmd)
        }));
        plan.push(Step::new("helm charts", move || crate::charts::run(root)));
    }

    if !args.no_e2e {
        plan.push(Step::new("end-to-end tests (real Envoy)", move || {
            // The conformance suite runs these binaries as processes, as `cargo xtask up` does.
            // `--workspace`, as the charts step builds: with `-p` cargo unifies features
            // over fewer packages and rebuilds half the dependency tree a second time.
            let mut build = cargo(root);
            build.args(["build", "--workspace", "--bins"]);
            locked(&mut build);
            steps::run(&mut build)?;
            let mut cmd = with_env(cargo(root));
            cmd.env(E2E_BIN_DIR_ENV, debug_dir(root));
            if let Some(home) = vllm_home.get() {
                cmd.env(switchyard_local::vllm::HOME_ENV, home);
            }
            if nextest {
                cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
                cmd.args(["--no-tests", "fail", "-E", E2E_FILTER]);
            } else {
                // Every integration test of the conformance crate; by convention they are all
                // `e2e_*`.
                cmd.args(["test", "--no-fail-fast", "-p", E2E_PACKAGE, "--test", "*"]);
            }
            locked(&mut cmd);
            steps::run(&mut cmd)
        }));
    }

    steps::run_all(plan)
}

/// Where `cargo build` puts debug binaries (honouring `CARGO_TARGET_DIR`).
fn debug_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("debug")
}

/// In CI a stale `Cargo.lock` is an error rather than something cargo quietly rewrites.
fn locked(cmd: &mut Command) {
    if steps::in_ci() {
        cmd.arg("--locked");
    }
}
