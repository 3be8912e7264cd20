//! `cargo xtask fuzz <target>`: runs a crate's cargo-fuzz target for a bounded time.
//!
//! libFuzzer needs nightly's sanitizer flags, so this calls `cargo +nightly fuzz` through the
//! rustup proxy (the pinned stable toolchain stays in charge of everything else). cargo-fuzz is
//! installed from crates.io when missing.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::steps;

/// The cargo-fuzz version the fuzz crates are written against.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(clap::Args)]
pub struct Args {
    /// Which crate's fuzz target to run: `bbr` (the JSON `model` extractor).
    target: String,
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
}

/// A fuzz target: its fuzz crate, the libFuzzer target name, and corpus/seed/dictionary paths,
/// all relative to the workspace root.
struct FuzzTarget {
    name: &'static str,
    fuzz_dir: &'static str,
    fuzzer: &'static str,
    corpus: &'static str,
    seeds: &'static str,
    dictionary: &'static str,
}

const TARGETS: &[FuzzTarget] = &[FuzzTarget {
    name: "bbr",
    fuzz_dir: "bbr/fuzz",
    fuzzer: "extract",
    corpus: "bbr/fuzz/corpus/extract",
    seeds: "bbr/fuzz/seeds/extract",
    dictionary: "bbr/fuzz/extract.dict",
}];

pub fn run(root: &Path, args: &Args) -> Result<()> {
    let Some(target) = TARGETS.iter().find(|t| t.name == args.target) else {
        let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        bail!(
            "no fuzz target `{}`; known targets: {}",
            args.target,
            known.join(", ")
        );
    };
    if !steps::succeeds(rustup_cargo(root).args(["+nightly", "--version"])) {
        bail!("fuzzing needs the nightly toolchain (`rustup toolchain list` should show nightly)");
    }
    if !steps::succeeds(rustup_cargo(root).args(["fuzz", "--version"])) {
        steps::run(rustup_cargo(root).args([
            "install",
            "--locked",
            &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        ]))?;
    }
    std::fs::create_dir_all(root.join(target.corpus))?;
    let dict = format!("-dict={}", target.dictionary);
    let time = format!("-max_total_time={}", args.seconds);
    steps::run(rustup_cargo(root).args([
        "+nightly",
        "fuzz",
        "run",
        "--fuzz-dir",
        target.fuzz_dir,
        target.fuzzer,
        target.corpus,
        target.seeds,
        "--",
        &dict,
        &time,
    ]))
}

/// `cargo` through the rustup proxy on PATH, so `+nightly` selects a toolchain; the `CARGO`
/// path xtask runs under belongs to the pinned toolchain and would not understand it.
fn rustup_cargo(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).env_remove("RUSTUP_TOOLCHAIN");
    cmd
}
