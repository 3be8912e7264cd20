//! Child processes that cannot outlive their owner: Envoy, and later BBR, EPP and simulator
//! replicas.
//!
//! A [`ChildProcess`] writes stdout and stderr to one log file, runs in its own process group
//! (so a terminal's Ctrl-C reaches only the supervisor, which then stops children in order)
//! and is stopped with SIGTERM, then SIGKILL, when dropped. If the owner dies without running
//! destructors (SIGKILL, a test runner's timeout), the kernel sends the child SIGKILL: it is
//! started through util-linux `setpriv --pdeathsig KILL` when that is installed.
//!
//! The parent-death signal fires when the *thread* that spawned the child exits, so spawn
//! from a thread that lives as long as the child (a test's thread, `main`, a runtime worker),
//! never from `spawn_blocking`.
//!
//! [`supervise`] watches a set of children until a shutdown future resolves or one of them
//! exits.

use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use crate::error::{Error, Result};

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often exit is polled while stopping; Envoy usually exits within a few milliseconds.
const STOP_POLL: Duration = Duration::from_millis(10);
/// How often [`supervise`] checks its children.
const SUPERVISE_POLL: Duration = Duration::from_millis(200);
/// How many log lines to print when a child dies or a test panics.
pub const TAIL_LINES: usize = 40;
/// Where util-linux keeps `setpriv` on Debian.
const SETPRIV: &str = "/usr/bin/setpriv";

/// A running child process with its own log file; stopped on drop.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
    print_tail_on_panic: bool,
}

// === impl ChildProcess ===

impl ChildProcess {
    /// Starts `cmd` with stdin closed and stdout and stderr appended to `log`.
    ///
    /// Only the program, arguments, environment changes and working directory of `cmd` are
    /// used (the child is re-created under `setpriv`).
    pub fn spawn(name: impl Into<String>, cmd: &Command, log: &Path) -> Result<Self> {
        let name = name.into();
        let program = Path::new(cmd.get_program());
        let mut wrapped = if Path::new(SETPRIV).is_file() {
            let mut w = Command::new(SETPRIV);
            w.args(["--pdeathsig", "KILL", "--"]).arg(program);
            w
        } else {
            Command::new(program)
        };
        wrapped.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }

        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(Error::io(format!("opening log file {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(Error::io(format!("duplicating log file {}", log.display())))?;
        wrapped
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = wrapped.spawn().map_err(Error::io(format!(
            "starting {name} ({})",
            program.display()
        )))?;
        tracing::debug!(%name, pid = child.id(), log = %log.display(), "started child process");
        Ok(Self {
            name,
            child,
            log: log.to_path_buf(),
            exit: None,
            print_tail_on_panic: true,
        })
    }

    /// The name given at spawn, used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file holding the child's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether dropping this handle while the thread panics prints the log tail (default on,
    /// so a failed test shows what the child said).
    pub fn set_print_tail_on_panic(&mut self, on: bool) {
        self.print_tail_on_panic = on;
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .map_err(Error::io(format!("checking whether {} exited", self.name)))?;
        }
        Ok(self.exit)
    }

    /// The last `lines` lines of the child's log (empty if the log cannot be read).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// An [`Error::ExitedEarly`] if the child has exited; for readiness loops.
    pub fn fail_if_exited(&mut self) -> Result<()> {
        match self.try_exit()? {
            None => Ok(()),
            Some(status) => Err(Error::ExitedEarly {
                name: self.name.clone(),
                pid: self.pid(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: self.log_tail(TAIL_LINES),
            }),
        }
    }

    /// Waits until the child exits by itself.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .map_err(Error::io(format!("waiting for {} to exit", self.name)))?;
        self.exit = Some(status);
        Ok(status)
    }

    /// Stops the child: SIGTERM to its process group, then SIGKILL after [`STOP_GRACE`].
    /// Returns how it exited. Calling it again returns the same status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit()? {
            return Ok(status);
        }
        // The child leads its own process group (`process_group(0)`), so the group id is its
        // pid; signalling the group also reaches anything it forked.
        let group = Pid::from_child(&self.child);
        // ESRCH here only means it exited since `try_exit`; the wait below settles that.
        let _ = kill_process_group(group, Signal::TERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit()? {
                return Ok(status);
            }
            std::thread::sleep(STOP_POLL);
        }
        tracing::warn!(name = %self.name, pid = self.pid(), "no exit after SIGTERM; sending SIGKILL");
        let _ = kill_process_group(group, Signal::KILL);
        let status = self
            .child
            .wait()
            .map_err(Error::io(format!("waiting for {} to exit", self.name)))?;
        self.exit = Some(status);
        Ok(status)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let stopped = self.stop();
        // Printed after stopping: a process that buffers stdout (Envoy's access log) has
        // flushed everything by the time it exits.
        if std::thread::panicking() && self.print_tail_on_panic {
            eprintln!(
                "---- last {TAIL_LINES} lines of {} (pid {}, {}) ----\n{}\n---- end of {} log ----",
                self.name,
                self.pid(),
                self.log.display(),
                self.log_tail(TAIL_LINES),
                self.name
            );
        }
        if let Err(err) = stopped {
            eprintln!("could not stop {} (pid {}): {err}", self.name, self.pid());
        }
    }
}

/// The last `lines` lines of a file; reads at most the final 64 KiB so huge logs stay cheap.
pub fn log_tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file
        .seek(SeekFrom::Start(len.saturating_sub(WINDOW)))
        .is_err()
    {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Why [`supervise`] returned.
#[derive(Debug)]
pub enum Supervised {
    /// The shutdown future resolved (for example Ctrl-C).
    Shutdown,
    /// A child exited on its own.
    ChildExited {
        /// Index of the child in the slice given to [`supervise`].
        index: usize,
        /// How it exited.
        status: ExitStatus,
    },
}

/// Waits until `shutdown` resolves or any child exits, whichever is first. Stopping the rest
/// is left to the caller (dropping the handles does it).
pub async fn supervise(
    children: &mut [&mut ChildProcess],
    shutdown: impl Future<Output = ()>,
) -> Result<Supervised> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(SUPERVISE_POLL);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(Supervised::Shutdown),
            _ = tick.tick() => {
                for (index, child) in children.iter_mut().enumerate() {
                    if let Some(status) = child.try_exit()? {
                        return Ok(Supervised::ChildExited { index, status });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn log_tail_returns_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(log_tail(&path, 3), "line 98\nline 99\nline 100");
        assert_eq!(log_tail(&dir.path().join("missing.log"), 3), "");
    }

    #[test]
    fn stop_terminates_and_reaps_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let mut child = ChildProcess::spawn("sleep", &cmd, &log).unwrap();
        assert!(child.try_exit().unwrap().is_none());
        let pid = child.pid();
        let status = child.stop().unwrap();
        // Killed by SIGTERM, not exited by itself.
        assert!(!status.success());
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_child_that_exits_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'bad flag --nope'; exit 3"]);
        let mut child = ChildProcess::spawn("sh", &cmd, &log).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3));
        let err = child.fail_if_exited().unwrap_err().to_string();
        assert!(err.contains("sh (pid"), "{err}");
        assert!(err.contains("bad flag --nope"), "{err}");
    }
}
