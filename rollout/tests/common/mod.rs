//! Helpers shared by the integration tests: a real Prometheus started on
//! loopback, simulator replicas, and a small HTTP client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use switchyard_sim::faults::Faults;
use switchyard_sim::http::{ReplicaHandle, ReplicaOptions, spawn_replica};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// Environment variable naming the Prometheus executable.
pub const PROMETHEUS_ENV: &str = "SWITCHYARD_PROMETHEUS";

/// The Prometheus executable: `$SWITCHYARD_PROMETHEUS`, else the Debian
/// package's `/usr/bin/prometheus`. `None` when neither exists.
pub fn prometheus_binary() -> Option<PathBuf> {
    std::env::var_os(PROMETHEUS_ENV)
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/prometheus")])
        .find(|path| path.is_file())
}

/// A Prometheus server scraping the given targets every second; killed on drop.
pub struct RunningPrometheus {
    pub address: String,
    _child: Child,
    _dir: TempDir,
}

/// Starts Prometheus on a free loopback port, scraping each `(job, target,
/// inference_pool label)` every second, and waits until it is ready.
pub async fn start_prometheus(
    binary: &PathBuf,
    targets: &[(&str, SocketAddr, &str)],
) -> RunningPrometheus {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n");
    for (job, target, pool) in targets {
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n        labels: {{inference_pool: {pool}}}\n"
        ));
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");
    let address = format!("http://127.0.0.1:{port}");
    let client = http_client();
    for _ in 0..200 {
        let ready = client
            .request(
                Request::get(format!("{address}/-/ready"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return RunningPrometheus {
                address,
                _child: child,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("prometheus did not become ready at {address}");
}

pub fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A simulator replica serving `model`, with `faults`, fast enough for tests.
pub async fn replica(name: &str, model: &str, faults: Faults) -> ReplicaHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = ReplicaOptions::new(name, model);
    // Real-time step costs: at much smaller scales a step can be shorter than the
    // simulator's timer-lag allowance, and its TTFT arithmetic underflows (reported).
    options.time_scale = 1.0;
    options.faults = faults;
    spawn_replica(listener, options).unwrap()
}

/// Sends `n` chat completions to `addr` (8 concurrent); returns the statuses.
pub async fn send_chats(addr: SocketAddr, model: &str, n: usize) -> Vec<u16> {
    let client = http_client();
    let body = format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"tell me about canaries"}}],"max_tokens":8}}"#
    );
    let mut statuses = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let requests = chunk.iter().map(|_| {
            let request = Request::post(format!("http://{addr}/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap();
            let client = client.clone();
            async move {
                let response = client.request(request).await.unwrap();
                let status = response.status().as_u16();
                let _ = response.into_body().collect().await;
                status
            }
        });
        statuses.extend(futures::future::join_all(requests).await);
    }
    statuses
}
