//! Envoy running a translated gateway: started from a [`ConfigDir`]'s bootstrap, ready once
//! its admin API reports LIVE (which, with file-based xDS, means listeners, clusters and routes
//! were all read) and stopped on drop.
//!
//! Separate from [`crate::envoy::Envoy`], which renders its own static bootstrap for harness
//! tests; this one runs whatever the translator wrote and keeps running while the files
//! change.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::StatusCode;

use crate::client::HttpClient;
use crate::envoy::{self, EnvoyProcess, wait_ready};
use crate::error::{Error, Result};
use crate::process::ChildProcess;
use crate::translate::{ConfigDir, LISTENER_NAME};

/// A running Envoy serving a translated gateway.
#[derive(Debug)]
pub struct GatewayEnvoy {
    envoy: EnvoyProcess,
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
        let mut cmd = envoy::command(binary, &dir.bootstrap_path(), &admin_file)?;
        cmd.args(["--log-level", "warning"]);
        let mut process = ChildProcess::spawn("envoy", &cmd, log)?;
        let client = HttpClient::new();
        let (admin, listener) = wait_ready(&mut process, &client, &admin_file, timeout, |json| {
            Ok(bound_listener(json))
        })
        .await?;
        Ok(Self {
            envoy: EnvoyProcess::new(process, admin, listener),
        })
    }

    /// How many listener, cluster and route file updates Envoy refused so far. Envoy keeps
    /// the previous configuration when it refuses one (an RE2 expression it cannot compile,
    /// say), so a caller that rewrote the files checks this and shows the log.
    pub async fn rejected_updates(&self) -> Result<u64> {
        let url = format!("http://{}/stats?filter=update_rejected", self.admin_addr());
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

impl std::ops::Deref for GatewayEnvoy {
    type Target = EnvoyProcess;

    fn deref(&self) -> &EnvoyProcess {
        &self.envoy
    }
}

impl std::ops::DerefMut for GatewayEnvoy {
    fn deref_mut(&mut self) -> &mut EnvoyProcess {
        &mut self.envoy
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
