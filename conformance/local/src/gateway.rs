//! Envoy running a translated gateway: started from a [`ConfigDir`]'s bootstrap, ready once
//! its admin API reports LIVE (which, with file-based xDS, means listeners, clusters and routes
//! were all read) and stopped on drop.
//!
//! Separate from [`crate::envoy::Envoy`], which renders its own static bootstrap for harness
//! tests; this one runs whatever the translator wrote and keeps running while the files
//! change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use http::StatusCode;

use crate::client::HttpClient;
use crate::envoy::wait_ready;
use crate::error::{Error, Result};
use crate::process::ChildProcess;
use crate::translate::{ConfigDir, LISTENER_NAME};

/// A running Envoy serving a translated gateway.
#[derive(Debug)]
pub struct GatewayEnvoy {
    process: ChildProcess,
    admin: SocketAddr,
    listener: SocketAddr,
}

// === impl GatewayEnvoy ===

impl GatewayEnvoy {
    /// Starts `binary` on `dir`'s bootstrap (written by [`ConfigDir::write`]), logging to
    /// `log`, and waits up to `timeout` until it serves.
    pub async fn start(
        binary: &Path,
        dir: &ConfigDir,
        log: &Path,
        timeout: Duration,
    ) -> Result<Self> {
        let admin_file = dir.path().join("admin.addr");
        match std::fs::remove_file(&admin_file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(Error::io(format!("removing {}", admin_file.display()))(err));
            }
        }
        let mut cmd = Command::new(binary);
        cmd.arg("-c")
            .arg(dir.bootstrap_path())
            .arg("--admin-address-path")
            .arg(&admin_file)
            // Hot restart needs shared memory keyed by base id; two Envoys would clash.
            .arg("--disable-hot-restart")
            // Flush the access log every 100 ms rather than every 10 s, so `tail -f` is live.
            .args(["--file-flush-interval-msec", "100"])
            .args(["--log-level", "warning"]);
        let mut process = ChildProcess::spawn("envoy", &cmd, log)?;
        let client = HttpClient::new();
        let (admin, listener) = wait_ready(&mut process, &client, &admin_file, timeout, |json| {
            Ok(bound_listener(json))
        })
        .await?;
        tracing::info!(pid = process.pid(), %admin, %listener, "gateway envoy ready");
        Ok(Self {
            process,
            admin,
            listener,
        })
    }

    /// `http://<listener>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.listener, path.trim_start_matches('/'))
    }

    /// The bound HTTP listener.
    pub fn listener_addr(&self) -> SocketAddr {
        self.listener
    }

    /// The admin API.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The child process, for supervision.
    pub fn process_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path().to_path_buf()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// How many listener, cluster and route file updates Envoy refused so far. Envoy keeps
    /// the previous configuration when it refuses one (an RE2 expression it cannot compile,
    /// say), so a caller that rewrote the files checks this and shows the log.
    pub async fn rejected_updates(&self) -> Result<u64> {
        let url = format!("http://{}/stats?filter=update_rejected", self.admin);
        let response = HttpClient::new().get(&url, &[]).await?;
        if response.status != StatusCode::OK {
            return Err(Error::Admin(format!(
                "GET {url} answered {}",
                response.status
            )));
        }
        Ok(sum_rejections(&response.text()))
    }
}

/// The sum of every `….update_rejected: N` line of `/stats`.
fn sum_rejections(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| name.ends_with(".update_rejected"))
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}

/// The bound address of [`LISTENER_NAME`] in `/listeners?format=json`.
fn bound_listener(listeners_json: &str) -> Option<SocketAddr> {
    let json: serde_json::Value = serde_json::from_str(listeners_json).ok()?;
    let socket = json["listener_statuses"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == LISTENER_NAME)
        .map(|l| &l["local_address"]["socket_address"])?;
    let ip = socket["address"].as_str()?.parse().ok()?;
    let port = u16::try_from(socket["port_value"].as_u64()?).ok()?;
    (port != 0).then(|| SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_is_found_by_name_once_bound() {
        let json = r#"{"listener_statuses":[{"name":"other","local_address":{"socket_address":
            {"address":"127.0.0.1","port_value":1}}},{"name":"inference_gateway","local_address":
            {"socket_address":{"address":"127.0.0.1","port_value":36929}}}]}"#;
        assert_eq!(
            bound_listener(json),
            Some(SocketAddr::from(([127, 0, 0, 1], 36929)))
        );
        assert_eq!(bound_listener(r#"{"listener_statuses":[]}"#), None);
        assert_eq!(bound_listener("not json"), None);
    }

    #[test]
    fn rejections_are_summed_over_every_subscription() {
        let stats = "cluster_manager.cds.update_rejected: 1\n\
                     http.inference_gateway.rds.inference_routes.update_rejected: 2\n\
                     listener_manager.lds.update_rejected: 0\n\
                     cluster_manager.cds.update_success: 7\n";
        assert_eq!(sum_rejections(stats), 3);
        assert_eq!(sum_rejections(""), 0);
    }
}
