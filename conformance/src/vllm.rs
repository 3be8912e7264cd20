//! Real `vllm serve` processes for the suites: each on free loopback ports, waited for until
//! `/health` answers, stopped (with its engine process) when dropped.
//!
//! A server takes about 2 GB and most of a core while it starts, so at most [`SLOTS`] run
//! at once on a machine: a server (or a whole real-vLLM stack, through [`Slots::acquire`])
//! first takes file locks under the setup's home directory, which every test process sees,
//! and waits while they are held elsewhere.
//!
//! The setup comes from `cargo xtask vllm setup` (`cargo xtask test` runs it in its tools
//! step); without it [`VllmServer::start`] fails with the command to run.

use std::fs::{File, TryLockError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_local::client::HttpClient;
use switchyard_local::process::ChildProcess;
use switchyard_local::running::wait_ready;
use switchyard_local::stack::Readiness;
use switchyard_local::vllm::{Install, START_TIMEOUT, ServeOptions};

use crate::{Error, Result, ports};

/// How many real servers may run at once on this machine.
pub const SLOTS: usize = 2;
/// How long to wait for free slots before failing (other suites' servers finish first).
const SLOT_WAIT: Duration = Duration::from_secs(900);

/// Held server slots; released when dropped.
#[derive(Debug)]
pub struct Slots {
    _locks: Vec<File>,
}

impl Slots {
    /// Takes `count` of the machine's [`SLOTS`] at once (all or none, so two waiters never
    /// hold one each and wait for each other), waiting while others hold them.
    pub async fn acquire(install: &Install, count: usize) -> Result<Self> {
        let dir = install.home.join("slots");
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let started = Instant::now();
        loop {
            let mut held = Vec::new();
            for slot in 0..SLOTS {
                let path = dir.join(format!("slot-{slot}"));
                let file = File::create(&path)
                    .map_err(Error::io(format!("creating {}", path.display())))?;
                match file.try_lock() {
                    Ok(()) => held.push(file),
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(err)) => {
                        return Err(Error::io(format!("locking {}", path.display()))(err));
                    }
                }
                if held.len() == count {
                    return Ok(Self { _locks: held });
                }
            }
            drop(held);
            if started.elapsed() > SLOT_WAIT {
                return Err(Error::Admin(format!(
                    "no {count} free real-vLLM slots after {SLOT_WAIT:?}: other suites' \
                     servers still run (locks in {})",
                    dir.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One running server.
#[derive(Debug)]
pub struct VllmServer {
    /// The options it was started with (ports filled in).
    pub options: ServeOptions,
    child: ChildProcess,
    _slots: Option<Slots>,
    _dir: tempfile::TempDir,
}

impl VllmServer {
    /// The finished setup, or an error saying how to make one.
    pub fn install() -> Result<Install> {
        let install = Install::locate();
        match install.missing() {
            None => Ok(install),
            Some(missing) => Err(Error::Io {
                context: missing,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        }
    }

    /// Starts a server with `options` on a free port (a `Some(0)` KV-event or replay port
    /// gets a free one too), taking a slot first, and waits for `/health`.
    pub async fn start(mut options: ServeOptions) -> Result<Self> {
        let install = Self::install()?;
        let slots = Slots::acquire(&install, 1).await?;
        options.port = ports::free_port()?;
        if options.kv_events_port == Some(0) {
            options.kv_events_port = Some(ports::free_port()?);
        }
        if options.kv_replay_port == Some(0) {
            options.kv_replay_port = Some(ports::free_port()?);
        }
        let dir = tempfile::tempdir().map_err(Error::io("creating a log directory"))?;
        let log = dir.path().join("vllm.log");
        let name = format!("vllm-{}", options.port);
        let mut child = ChildProcess::spawn(name, &options.command(&install), &log)?;
        let ready = Readiness::Http(vec![format!("http://127.0.0.1:{}/health", options.port)]);
        wait_ready(&mut child, &ready, START_TIMEOUT).await?;
        Ok(Self {
            options,
            child,
            _slots: Some(slots),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.options.port)
    }

    /// The HTTP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.options.port))
    }

    /// The server's log so far (for assertion messages).
    pub fn log_tail(&self, lines: usize) -> String {
        self.child.log_tail(lines)
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.child.log_path().to_path_buf()
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> Result<String> {
        let response = HttpClient::new().get(&self.url("/metrics"), &[]).await?;
        Ok(response.text())
    }
}
