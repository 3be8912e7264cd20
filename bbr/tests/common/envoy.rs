//! Envoy for BBR's end-to-end tests, on the conformance harness.
//!
//! The harness's bootstrap builder knows the BUFFERED and NONE body modes only, so this helper
//! renders its JSON and patches the BBR filter (FULL_DUPLEX_STREAMED with trailers SEND) and
//! the connection manager (HTTP/1 trailers on), then runs Envoy the way the harness does, with
//! the harness's process supervision and port helpers.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_conformance::envoy::bootstrap::Bootstrap;
use switchyard_conformance::envoy::locate;
use switchyard_conformance::ports::{free_addr, wait_for_tcp};
use switchyard_conformance::process::ChildProcess;
use tempfile::TempDir;

/// The request body mode of the BBR filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `BUFFERED`.
    Buffered,
    /// `FULL_DUPLEX_STREAMED`, request trailers SEND.
    FullDuplex,
}

/// A running Envoy; stopped when dropped.
pub struct TestEnvoy {
    process: ChildProcess,
    /// The HTTP listener.
    pub listener: SocketAddr,
    _dir: TempDir,
}

impl TestEnvoy {
    /// `http://listener/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.listener, path.trim_start_matches('/'))
    }

    /// The end of Envoy's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail(40)
    }
}

fn patch(mut config: Value, filter: &str, mode: Mode) -> Value {
    let hcm = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    // HTTP/1 trailers are dropped unless enabled; the trailers test needs them.
    hcm["http_protocol_options"] = json!({ "enable_trailers": true });
    if let Some(filters) = hcm["http_filters"].as_array_mut() {
        for f in filters.iter_mut().filter(|f| f["name"] == filter) {
            let config = &mut f["typed_config"];
            if mode == Mode::FullDuplex {
                config["processing_mode"]["request_body_mode"] = json!("FULL_DUPLEX_STREAMED");
                config["processing_mode"]["request_trailer_mode"] = json!("SEND");
            }
            // Spoofed-header tests rely on BBR's header mutations being applied.
            config["mutation_rules"] = json!({ "disallow_is_error": false });
        }
    }
    config
}

/// Starts Envoy on `bootstrap`, with the ext_proc filter named `filter` switched to `mode`.
pub async fn start(bootstrap: Bootstrap, filter: &str, mode: Mode) -> TestEnvoy {
    start_with_buffer_limit(bootstrap, filter, mode, None).await
}

/// [`start`], with the listener's per-connection buffer limit (which bounds a BUFFERED body)
/// set to `buffer_limit` bytes instead of the harness's 4 MiB.
pub async fn start_with_buffer_limit(
    bootstrap: Bootstrap,
    filter: &str,
    mode: Mode,
    buffer_limit: Option<u64>,
) -> TestEnvoy {
    let listener = free_addr().expect("a free port");
    let admin = free_addr().expect("a free port");
    let mut config = patch(
        bootstrap.listener(listener).admin(admin).to_json(),
        filter,
        mode,
    );
    if let Some(limit) = buffer_limit {
        config["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] =
            json!(limit);
    }
    let dir = TempDir::with_prefix("switchyard-bbr-e2e-").expect("a temporary directory");
    let path = dir.path().join("envoy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).expect("JSON"))
        .expect("writing the bootstrap");
    let binary = locate().expect("Envoy: run `cargo xtask tools` first");
    let mut cmd = Command::new(binary);
    cmd.arg("-c")
        .arg(&path)
        .arg("--disable-hot-restart")
        .args(["--concurrency", "1"])
        .args(["--file-flush-interval-msec", "100"])
        .args(["--log-level", "warning"]);
    let mut process =
        ChildProcess::spawn("envoy", &cmd, &dir.path().join("envoy.log")).expect("starting envoy");
    wait_for_tcp(&mut process, listener, Duration::from_secs(30))
        .await
        .expect("envoy listening");
    TestEnvoy {
        process,
        listener,
        _dir: dir,
    }
}
