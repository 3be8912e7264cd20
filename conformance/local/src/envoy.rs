//! Finding Envoy on disk and waiting until a started Envoy is serving: what both the local
//! gateway ([`crate::gateway`]) and the conformance harness's own Envoy need.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::client::HttpClient;
use crate::error::{Error, Result};
use crate::process::{ChildProcess, TAIL_LINES};

/// Environment variable naming the Envoy binary; `cargo xtask test` exports it.
pub const ENVOY_ENV: &str = "SWITCHYARD_ENVOY";
/// Where `cargo xtask tools` puts Envoy, relative to the workspace root.
pub const ENVOY_TOOL_PATH: &str = "target/tools/py/envoy/_bin/envoy";
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(25);

/// A started Envoy: its process, admin API and HTTP listener. The local gateway
/// ([`crate::gateway::GatewayEnvoy`]) and the test harness's Envoy are each one of these plus
/// what they add, and reach these accessors through `Deref`.
#[derive(Debug)]
pub struct EnvoyProcess {
    process: ChildProcess,
    admin: SocketAddr,
    listener: SocketAddr,
}

// === impl EnvoyProcess ===

impl EnvoyProcess {
    /// A ready Envoy (see [`wait_ready`]).
    pub fn new(process: ChildProcess, admin: SocketAddr, listener: SocketAddr) -> Self {
        tracing::info!(pid = process.pid(), %admin, %listener, "envoy ready");
        Self {
            process,
            admin,
            listener,
        }
    }

    /// `http://<listener>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.listener, path.trim_start_matches('/'))
    }

    /// The bound HTTP listener.
    pub fn listener_addr(&self) -> SocketAddr {
        self.listener
    }

    /// The bound admin API.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The log file (Envoy's stderr log plus the access log on stdout).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// The child process, for supervision.
    pub fn process_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }

    /// Stops Envoy now instead of on drop.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.process.stop()
    }
}

/// The command line every Envoy here starts with: `config`, the admin address written to
/// `admin_file` (which is removed first, so a stale one is never read), no hot restart
/// (it needs shared memory keyed by base id, so two Envoys would clash), and the access log
/// flushed every 100 ms rather than every 10 s, so `tail -f` and failed tests' log tails are
/// current.
pub fn command(binary: &Path, config: &Path, admin_file: &Path) -> Result<Command> {
    match std::fs::remove_file(admin_file) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::io(format!("removing {}", admin_file.display()))(err)),
    }
    let mut cmd = Command::new(binary);
    cmd.arg("-c")
        .arg(config)
        .arg("--admin-address-path")
        .arg(admin_file)
        .arg("--disable-hot-restart")
        .args(["--file-flush-interval-msec", "100"]);
    Ok(cmd)
}

/// The workspace root (this crate sits at `conformance/local/`, two levels below it).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// The Envoy binary: `$SWITCHYARD_ENVOY` if set, else the one `cargo xtask tools` installs.
pub fn locate() -> Result<PathBuf> {
    locate_from(std::env::var_os(ENVOY_ENV), &workspace_root())
}

/// [`locate`] with its inputs given, for tests.
pub fn locate_from(env: Option<OsString>, root: &Path) -> Result<PathBuf> {
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::EnvoyNotFound {
                reason: format!(
                    "{ENVOY_ENV} is set to {}, which is not a file",
                    path.display()
                ),
            })
        };
    }
    let path = root.join(ENVOY_TOOL_PATH);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::EnvoyNotFound {
            reason: format!(
                "{ENVOY_ENV} is not set and {} does not exist",
                path.display()
            ),
        })
    }
}

/// Polls until Envoy has written its admin address, `/ready` answers 200 and
/// `find_listener` reads the listener's bound address from
/// `/listeners?format=json` (`Ok(None)`: not bound yet, keep waiting). Shared
/// by the harness Envoy and the local gateway, whose listeners differ.
pub async fn wait_ready(
    process: &mut ChildProcess,
    client: &HttpClient,
    admin_file: &Path,
    timeout: Duration,
    find_listener: impl Fn(&str) -> Result<Option<SocketAddr>>,
) -> Result<(SocketAddr, SocketAddr)> {
    let started = Instant::now();
    let mut stage = "the admin address file was not written";
    loop {
        process.fail_if_exited()?;
        if let Some(admin) = read_admin_addr(admin_file) {
            stage = "/ready did not answer 200 (listeners, clusters or routes not loaded)";
            let ready = client
                .get(&format!("http://{admin}/ready"), &[])
                .await
                .is_ok_and(|r| r.status == StatusCode::OK);
            if ready {
                let listeners = client
                    .get(&format!("http://{admin}/listeners?format=json"), &[])
                    .await?;
                if let Some(listener) = find_listener(&listeners.text())? {
                    return Ok((admin, listener));
                }
                stage = "the listener is not bound";
            }
        }
        if started.elapsed() > timeout {
            return Err(Error::NotReady {
                name: process.name().to_owned(),
                pid: process.pid(),
                waited: timeout,
                what: stage.to_owned(),
                log: process.log_path().to_path_buf(),
                tail: process.log_tail(TAIL_LINES),
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

fn read_admin_addr(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn locate_prefers_the_env_var_and_says_how_to_fix_a_missing_envoy() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate_from(None, dir.path()).unwrap_err().to_string();
        assert!(err.contains("cargo xtask tools"), "{err}");
        assert!(err.contains("SWITCHYARD_ENVOY is not set"), "{err}");

        let err = locate_from(Some("/nonexistent/envoy".into()), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("set to /nonexistent/envoy"), "{err}");

        let installed = dir.path().join(ENVOY_TOOL_PATH);
        std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
        std::fs::write(&installed, "").unwrap();
        assert_eq!(locate_from(None, dir.path()).unwrap(), installed);
        // An empty variable counts as unset.
        assert_eq!(locate_from(Some("".into()), dir.path()).unwrap(), installed);
        let other = dir.path().join("my-envoy");
        std::fs::write(&other, "").unwrap();
        assert_eq!(
            locate_from(Some(other.clone().into()), dir.path()).unwrap(),
            other
        );
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{manifest}");
    }
}
