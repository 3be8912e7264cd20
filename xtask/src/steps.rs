//! A numbered list of steps, each with a header, a timing and its name in any failure, plus
//! helpers to run commands loudly.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One step: a name and the work to do.
pub struct Step<'a> {
    name: String,
    work: Box<dyn FnOnce() -> Result<()> + 'a>,
}

impl<'a> Step<'a> {
    pub fn new(name: impl Into<String>, work: impl FnOnce() -> Result<()> + 'a) -> Self {
        Self {
            name: name.into(),
            work: Box::new(work),
        }
    }
}

/// Runs the steps in order and stops at the first failure, naming the failed step.
pub fn run_all(steps: Vec<Step<'_>>) -> Result<()> {
    let total = steps.len();
    let started = Instant::now();
    let mut timings: Vec<(String, Duration)> = Vec::with_capacity(total);
    for (index, step) in steps.into_iter().enumerate() {
        println!("\n==> [{}/{total}] {}", index + 1, step.name);
        let step_started = Instant::now();
        let result = (step.work)();
        let took = step_started.elapsed();
        match result {
            Ok(()) => {
                println!(
                    "<== [{}/{total}] {}: ok ({})",
                    index + 1,
                    step.name,
                    secs(took)
                );
                timings.push((step.name, took));
            }
            Err(err) => {
                println!(
                    "<== [{}/{total}] {}: FAILED after {}",
                    index + 1,
                    step.name,
                    secs(took)
                );
                print_summary(&timings, started.elapsed());
                return Err(err.context(format!("step `{}` failed", step.name)));
            }
        }
    }
    print_summary(&timings, started.elapsed());
    println!("all {total} steps passed");
    Ok(())
}

fn print_summary(timings: &[(String, Duration)], total: Duration) {
    println!("\n---- timings ----");
    for (name, took) in timings {
        println!("{:>8}  {name}", secs(*took));
    }
    println!("{:>8}  total", secs(total));
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A `cargo` command run from the workspace root, using the same cargo that runs xtask.
pub fn cargo(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root);
    cmd
}

/// True when running in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Runs a command, echoing it first, and fails with the command line if it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = command_line(cmd);
    println!("$ {line}");
    let status = cmd.status().with_context(|| format!("starting `{line}`"))?;
    if !status.success() {
        bail!("`{line}` exited with {status}");
    }
    Ok(())
}

/// True if `cmd` runs and exits zero; its output is discarded. For probing optional tools.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|out| out.status.success())
}

fn command_line(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or_else(|| OsStr::new("?"))
        .to_string_lossy()
        .into_owned();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains([' ', '(', ')', '&', '|', '*', '\'']) {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect();
    if args.is_empty() {
        program
    } else {
        format!("{program} {}", args.join(" "))
    }
}
