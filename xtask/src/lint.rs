//! `cargo xtask lint`: the layout rules clippy cannot see, so they stay fixed once fixed.
//!
//! 1. No module cycles: in each crate, the graph of `crate::` / `super::` / `self::` paths in
//!    non-test code ([`graph`]) has no strongly connected component of two or more modules.
//! 2. No source file over [`MAX_LINES`] lines outside tests: split it by concept (`foo.rs` +
//!    `foo/`).
//!
//! Every crate of the repository is read: each directory with a `Cargo.toml` that has a
//! `[package]` and a `src/`. Test code is left out: `tests.rs`, anything under a `tests/`
//! directory and `#[cfg(test)]` items. The step fails listing every finding, each with the
//! file and line that makes it, so the fix can start from the message.

mod graph;
mod source;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use graph::{Cycle, is_test_file};

/// The longest a non-test source file may be.
pub const MAX_LINES: usize = 500;

/// Directories never searched for crates.
const SKIPPED_DIRS: [&str; 3] = ["target", "node_modules", "fuzz-artifacts"];

/// One crate's findings.
#[derive(Debug, Default)]
struct CrateReport {
    /// The crate's directory, relative to the workspace root.
    dir: PathBuf,
    cycles: Vec<Cycle>,
    /// Non-test files over [`MAX_LINES`], relative to `src/`, with their line counts.
    long_files: Vec<(PathBuf, usize)>,
}

/// Checks every crate under `root`; fails listing every cycle and long file.
pub fn run(root: &Path) -> Result<()> {
    let mut crates = Vec::new();
    find_crates(root, root, &mut crates)?;
    crates.sort();
    let mut reports = Vec::new();
    for dir in &crates {
        let files = read_sources(&root.join(dir).join("src"))?;
        reports.push(check_crate(dir.clone(), &files));
    }
    let text = render(&reports);
    let cycles: usize = reports.iter().map(|r| r.cycles.len()).sum();
    let long: usize = reports.iter().map(|r| r.long_files.len()).sum();
    if cycles + long > 0 {
        print!("{text}");
        bail!("{cycles} module cycle(s) and {long} file(s) over {MAX_LINES} lines");
    }
    println!(
        "lint: {} crates, no module cycles, no source file over {MAX_LINES} lines",
        crates.len()
    );
    Ok(())
}

/// The findings of one crate, given its `src/` files.
fn check_crate(dir: PathBuf, files: &BTreeMap<PathBuf, String>) -> CrateReport {
    let long_files = files
        .iter()
        .filter(|(path, _)| !is_test_file(path))
        .map(|(path, text)| (path.clone(), text.lines().count()))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .collect();
    CrateReport {
        dir,
        cycles: graph::cycles(files),
        long_files,
    }
}

/// The report a failing run prints: one block per crate with findings.
fn render(reports: &[CrateReport]) -> String {
    let mut out = String::new();
    for report in reports {
        if report.cycles.is_empty() && report.long_files.is_empty() {
            continue;
        }
        let src = report.dir.join("src");
        let _ = writeln!(out, "{}:", report.dir.display());
        for cycle in &report.cycles {
            let names: Vec<String> = cycle.modules.iter().map(|m| display(m)).collect();
            let _ = writeln!(out, "  module cycle: {}", names.join(" ↔ "));
            for site in &cycle.sites {
                let _ = writeln!(
                    out,
                    "    {}:{}: {} uses {}",
                    src.join(&site.file).display(),
                    site.line,
                    display(&site.from),
                    display(&site.to)
                );
            }
        }
        for (file, lines) in &report.long_files {
            let _ = writeln!(
                out,
                "  {}: {lines} lines (over {MAX_LINES}; split it by concept)",
                src.join(file).display()
            );
        }
    }
    out
}

fn display(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Every crate directory under `dir`, relative to `root`.
fn find_crates(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() && dir.join("src").is_dir() {
        let text = fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        if text.lines().any(|line| line.trim() == "[package]") {
            out.push(dir.strip_prefix(root).unwrap_or(dir).to_path_buf());
        }
    }
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let skipped = name
            .as_deref()
            .is_none_or(|n| n.starts_with('.') || SKIPPED_DIRS.contains(&n) || n == "src");
        if path.is_dir() && !skipped {
            find_crates(root, &path, out)?;
        }
    }
    Ok(())
}

/// Every `.rs` file under `src`, keyed by its path relative to `src`.
fn read_sources(src: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let relative = path.strip_prefix(src).unwrap_or(&path).to_path_buf();
                files.insert(relative, text);
            }
        }
    }
    Ok(files)
}
