//! `cargo xtask whatif`: the what-if routing report — every routing policy over the same
//! calibrated, simulated fleet, workloads and seeds (`switchyard-whatif`, docs/routing.md).
//!
//! Flags are the harness's own (`--workload NAME|FILE`, `--policies LIST|all`,
//! `--rates LIST`, `--replicas N`, `--out DIR`, `--threads N`, `--no-progress`); this task
//! builds it (optimised through the dev profile's per-package settings) and runs it from the
//! workspace root, so `--out` and workload paths are relative to the root.

use std::path::Path;

use anyhow::Result;

use crate::steps::{self, cargo};

/// Arguments passed through to `switchyard-whatif`.
#[derive(clap::Args)]
pub struct Args {
    /// `switchyard-whatif` flags, e.g. `--workload b2b-saas --policies random,switchyard`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Builds and runs the harness with `args`.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    steps::run(
        cargo(root)
            .args([
                "run",
                "--quiet",
                "-p",
                "switchyard-whatif",
                "--bin",
                "switchyard-whatif",
                "--",
            ])
            .args(&args.args),
    )
}
