//! The `switchyard-epp` binary: startup errors name the flag, file and field; a good start
//! serves health; SIGTERM drains and exits 0.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use switchyard_conformance::process::ChildProcess;

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard-epp");

fn epp(args: &[&str]) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.args(["--grpc-port=0", "--grpc-health-port=0", "--metrics-port=0"]);
    cmd.args(["--bind-address", "127.0.0.1", "--log-format", "json"]);
    cmd.args(args);
    cmd
}

fn fails_with(args: &[&str], expected: &[&str]) {
    let output = epp(args).output().unwrap();
    assert!(!output.status.success(), "{args:?} started");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for text in expected {
        assert!(stderr.contains(text), "{args:?}: `{text}` not in\n{stderr}");
    }
}

#[test]
fn startup_errors_say_what_to_fix() {
    let bad = common::endpoints_file("pool", &[], "");
    std::fs::write(bad.path(), "endpoints: [{name: x, address: nowhere}]\n").unwrap();
    let path = bad.path().to_str().unwrap();
    fails_with(
        &["--endpoints-file", path],
        &[path, "endpoints[0].address", "`nowhere`"],
    );
    fails_with(&[], &["--pool-name", "--endpoints-file"]);
    fails_with(&["--pool-name", "p"], &["--endpoints-file"]);
    fails_with(
        &[
            "--endpoints-file",
            path,
            "--config-text",
            "plugins: [{type: nope}]",
        ],
        &["unknown plugin type `nope`"],
    );
    fails_with(
        &["--refresh-metrics-interval", "often"],
        &["often", "not a duration"],
    );
}

/// The `grpc` or `health` address from the "serving" log line.
fn serving_addr(log: &str, field: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("switchyard-epp serving"))?;
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    json["fields"][field].as_str()?.parse().ok()
}

#[tokio::test]
async fn serves_then_drains_on_sigterm() {
    let file = common::endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("epp.log");
    let mut child = ChildProcess::spawn(
        "switchyard-epp",
        &epp(&[
            "--endpoints-file",
            file.path().to_str().unwrap(),
            "--secure-serving=false",
            "--drain-grace-period=1s",
        ]),
        &log,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(addr) =
            serving_addr(&std::fs::read_to_string(&log).unwrap_or_default(), "health")
        {
            break addr;
        }
        child.fail_if_exited().unwrap();
        assert!(
            Instant::now() < deadline,
            "no serving line:\n{}",
            child.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    common::wait_until_serving(
        health,
        Instant::now() + Duration::from_secs(5),
        "switchyard-epp",
    )
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let status = child.stop().unwrap();
        (status, child.log_tail(5))
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit {:?}:\n{}", status.0, status.1);
    assert!(status.1.contains("draining"), "{}", status.1);
}
