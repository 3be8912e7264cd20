//! A real Envoy for tests: found on disk, started as a child process with a rendered
//! bootstrap, awaited until ready, and stopped on drop.
//!
//! Envoy binds its listener and admin API to port 0; the harness learns the admin address
//! from `--admin-address-path` and the listener's port from the admin API, so parallel tests
//! never race for ports.

pub mod bootstrap;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use http::StatusCode;
use tempfile::TempDir;

use crate::client::HttpClient;
use crate::error::{Error, Result};
use crate::process::ChildProcess;
use bootstrap::{Bootstrap, LISTENER_NAME};
use switchyard_local::envoy::{EnvoyProcess, wait_ready};
// Finding Envoy is shared with the local gateway; re-exported so suites keep one import.
pub use switchyard_local::envoy::{
    ENVOY_ENV, ENVOY_TOOL_PATH, locate, locate_from, workspace_root,
};

/// How to run Envoy.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The binary; [`locate`] when `None`.
    pub binary: Option<PathBuf>,
    /// Where the config and log go; a temporary directory, removed on drop, when `None`.
    pub work_dir: Option<PathBuf>,
    /// Envoy's `--log-level`. `warning` by default: the info-level startup banner would fill
    /// the log tail a failed test prints, while the access log (one line per request) is
    /// written whatever the level.
    pub log_level: String,
    /// Envoy's `--component-log-level`, e.g. `ext_proc:debug`.
    pub component_log_level: Option<String>,
    /// How long to wait for the admin API to report LIVE. Envoy takes well under a second;
    /// the margin is for a 2-core machine that is also compiling.
    pub ready_timeout: Duration,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        Self {
            binary: None,
            work_dir: None,
            log_level: "warning".to_owned(),
            component_log_level: None,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// A running Envoy; stopped (SIGTERM, then SIGKILL) when dropped, and its log tail printed if
/// that happens during a panic.
#[derive(Debug)]
pub struct Envoy {
    // Dropped first: the process stops before its directory goes away.
    envoy: EnvoyProcess,
    config: PathBuf,
    client: HttpClient,
    _temp: Option<TempDir>,
}

// === impl Envoy ===

impl Envoy {
    /// Starts Envoy with default options and waits until it is ready.
    pub async fn start(bootstrap: &Bootstrap) -> Result<Self> {
        Self::start_with(bootstrap, EnvoyOptions::default()).await
    }

    /// Starts Envoy and waits until its admin API reports LIVE and its listener is bound.
    pub async fn start_with(bootstrap: &Bootstrap, options: EnvoyOptions) -> Result<Self> {
        let binary = match &options.binary {
            Some(path) => path.clone(),
            None => locate()?,
        };
        let (dir, temp) = work_dir(options.work_dir.as_deref())?;
        let config = dir.join("envoy.json");
        std::fs::write(&config, bootstrap.render())
            .map_err(Error::io(format!("writing {}", config.display())))?;
        let admin_file = dir.join("admin.addr");
        let mut cmd = switchyard_local::envoy::command(&binary, &config, &admin_file)?;
        // One worker: tests run several Envoys side by side on 2 cores.
        cmd.args(["--concurrency", "1"])
            .args(["--log-level", &options.log_level]);
        if let Some(levels) = &options.component_log_level {
            cmd.args(["--component-log-level", levels]);
        }
        let mut process = ChildProcess::spawn("envoy", &cmd, &dir.join("envoy.log"))?;
        let client = HttpClient::new();
        let (admin, listener) = wait_ready(
            &mut process,
            &client,
            &admin_file,
            options.ready_timeout,
            |json| listener_addr(json).map(Some),
        )
        .await?;
        Ok(Self {
            envoy: EnvoyProcess::new(process, admin, listener),
            config,
            client,
            _temp: temp,
        })
    }

    /// Checks a bootstrap with `envoy --mode validate` without starting a server.
    pub fn validate(bootstrap: &Bootstrap) -> Result<()> {
        let binary = locate()?;
        let dir = TempDir::with_prefix("switchyard-envoy-validate-")
            .map_err(Error::io("creating a temporary directory"))?;
        let config = dir.path().join("envoy.json");
        std::fs::write(&config, bootstrap.render())
            .map_err(Error::io(format!("writing {}", config.display())))?;
        let out = Command::new(&binary)
            .args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&config)
            .output()
            .map_err(Error::io(format!(
                "running {} --mode validate",
                binary.display()
            )))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Admin(format!(
                "envoy --mode validate rejected the bootstrap ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// The rendered bootstrap Envoy runs with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// `GET` an admin path such as `/stats` and return the body; non-200 is an error.
    pub async fn admin_get(&self, path: &str) -> Result<String> {
        let url = format!(
            "http://{}/{}",
            self.admin_addr(),
            path.trim_start_matches('/')
        );
        let response = self.client.get(&url, &[]).await?;
        if response.status != StatusCode::OK {
            return Err(Error::Admin(format!(
                "GET {url} answered {}: {}",
                response.status,
                response.text()
            )));
        }
        Ok(response.text())
    }

    /// The value of counter or gauge `name` from `/stats`, if Envoy has it.
    pub async fn stat(&self, name: &str) -> Result<Option<u64>> {
        let stats = self.admin_get("/stats").await?;
        Ok(parse_stat(&stats, name))
    }
}

impl std::ops::Deref for Envoy {
    type Target = EnvoyProcess;

    fn deref(&self) -> &EnvoyProcess {
        &self.envoy
    }
}

impl std::ops::DerefMut for Envoy {
    fn deref_mut(&mut self) -> &mut EnvoyProcess {
        &mut self.envoy
    }
}

fn parse_stat(stats: &str, name: &str) -> Option<u64> {
    stats.lines().find_map(|line| {
        let (key, value) = line.split_once(": ")?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

fn work_dir(requested: Option<&Path>) -> Result<(PathBuf, Option<TempDir>)> {
    match requested {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(Error::io(format!("creating {}", dir.display())))?;
            Ok((dir.to_path_buf(), None))
        }
        None => {
            let temp = TempDir::with_prefix("switchyard-envoy-")
                .map_err(Error::io("creating a temporary directory for Envoy"))?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

/// The bound address of [`LISTENER_NAME`] in `/listeners?format=json`.
fn listener_addr(listeners_json: &str) -> Result<SocketAddr> {
    let json: serde_json::Value =
        serde_json::from_str(listeners_json).map_err(|source| Error::Json {
            context: "parsing /listeners?format=json".to_owned(),
            source,
        })?;
    let socket = json["listener_statuses"]
        .as_array()
        .and_then(|all| all.iter().find(|l| l["name"] == LISTENER_NAME))
        .map(|l| &l["local_address"]["socket_address"])
        .ok_or_else(|| {
            Error::Admin(format!(
                "no listener named {LISTENER_NAME} in {listeners_json}"
            ))
        })?;
    let ip = socket["address"].as_str().unwrap_or_default();
    let port = socket["port_value"].as_u64().unwrap_or_default();
    format!("{ip}:{port}")
        .parse()
        .map_err(|_| Error::Admin(format!("unusable listener address in {listeners_json}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn listener_address_is_read_from_the_admin_api() {
        let json = r#"{"listener_statuses":[{"name":"other","local_address":{"socket_address":
            {"address":"127.0.0.1","port_value":1}}},{"name":"gateway","local_address":
            {"socket_address":{"address":"127.0.0.1","port_value":36929}}}]}"#;
        assert_eq!(
            listener_addr(json).unwrap(),
            "127.0.0.1:36929".parse().unwrap()
        );
        let err = listener_addr(r#"{"listener_statuses":[]}"#).unwrap_err();
        assert!(err.to_string().contains("no listener named gateway"));
    }

    #[test]
    fn stats_are_parsed_by_exact_name() {
        let stats = "http.gateway.rq_total: 7\nhttp.gateway.rq_total_x: 9\ncluster.a.up: 1\n";
        assert_eq!(parse_stat(stats, "http.gateway.rq_total"), Some(7));
        assert_eq!(parse_stat(stats, "missing"), None);
    }
}
