//! The corpus `epp/tests/upstream-configs/`: upstream-shaped EndpointPickerConfigs, one per
//! plugin and loader rule Switchyard implements. Each loads through the flags as the
//! binary reads them, and the `switchyard-epp` binary starts with each and answers health;
//! the configs under `refused/` fail with the text their first line names.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use switchyard_conformance::process::ChildProcess;
use switchyard_epp::cli::Args;

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard-epp");

fn corpus(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/upstream-configs")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The value of a `# key: …` first line.
fn header(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next()?;
    first
        .strip_prefix(&format!("# {key}:"))
        .map(|v| v.trim().to_owned())
}

fn flags(path: &Path) -> Vec<String> {
    header(path, "flags")
        .map(|f| f.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Everything the binary derives from the config, through the same flags.
fn load(path: &Path, endpoints: &Path) -> Result<(), String> {
    let mut argv = vec![
        "switchyard-epp".to_owned(),
        "--endpoints-file".into(),
        endpoints.display().to_string(),
        "--config-file".into(),
        path.display().to_string(),
    ];
    argv.extend(flags(path));
    let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
    args.scheduler_config().map_err(|e| e.to_string())?;
    args.flow_control_config().map_err(|e| e.to_string())?;
    args.scrape_config().map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn every_config_loads() {
    let endpoints = common::endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let files = corpus("");
    assert!(files.len() >= 15, "the corpus lost files: {files:?}");
    for file in files {
        if let Err(err) = load(&file, endpoints.path()) {
            panic!("{}: {err}", file.display());
        }
    }
}

#[test]
fn every_refused_config_says_why() {
    let endpoints = common::endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let files = corpus("refused");
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let expected = header(&file, "refused").unwrap();
        match load(&file, endpoints.path()) {
            Ok(()) => panic!("{} was accepted", file.display()),
            Err(err) => assert!(
                err.contains(&expected),
                "{}: `{expected}` not in {err}",
                file.display()
            ),
        }
    }
}

/// The `health` address from the "serving" log line.
fn health_addr(log: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("switchyard-epp serving"))?;
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    json["fields"]["health"].as_str()?.parse().ok()
}

/// Starts the binary with `args` and waits until readiness answers SERVING.
async fn starts_and_serves(name: String, args: Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("epp.log");
    let mut cmd = Command::new(BINARY);
    cmd.args(["--grpc-port=0", "--grpc-health-port=0", "--metrics-port=0"]);
    cmd.args(["--bind-address", "127.0.0.1", "--secure-serving=false"]);
    // Stop promptly: the drain itself is tested elsewhere.
    cmd.args(["--drain-grace-period=100ms", "--drain-timeout=1s"]);
    cmd.args(&args);
    let mut child = ChildProcess::spawn(name.clone(), &cmd, &log).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(addr) = health_addr(&std::fs::read_to_string(&log).unwrap_or_default()) {
            break addr;
        }
        if child.fail_if_exited().is_err() {
            panic!("{name} exited:\n{}", child.log_tail(20));
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no serving line:\n{}",
            child.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    common::wait_until_serving(health, deadline, &name).await;
    let (status, tail) = tokio::task::spawn_blocking(move || {
        let status = child.stop().unwrap();
        (status, child.log_tail(10))
    })
    .await
    .unwrap();
    assert!(status.success(), "{name}: exit {status:?}:\n{tail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_starts_with_each_config_and_upstream_deployment_flags() {
    // A few binaries at a time: twenty starting at once beside a loaded test run can take
    // longer than the harness's stop grace to drain, which says nothing about the configs.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let bounded = |name: String, args: Vec<String>| {
        let slots = slots.clone();
        async move {
            let _slot = slots.acquire_owned().await.unwrap();
            starts_and_serves(name, args).await;
        }
    };
    let endpoints = common::endpoints_file("pool", &["10.0.0.1:8000".parse().unwrap()], "");
    let file = endpoints.path().display().to_string();
    let mut runs = Vec::new();
    for config in corpus("") {
        let mut args = vec![
            "--endpoints-file".to_owned(),
            file.clone(),
            "--config-file".into(),
            config.display().to_string(),
        ];
        args.extend(flags(&config));
        let name = config.file_name().unwrap().to_string_lossy().into_owned();
        runs.push(tokio::spawn(bounded(name, args)));
    }
    // The args an upstream EPP Deployment passes (llm-d-router's chart and GIE's).
    let upstream: Vec<String> = [
        "--endpoints-file",
        &file,
        "--pool-namespace",
        "default",
        "--pool-group",
        "inference.networking.k8s.io",
        "--zap-encoder",
        "json",
        "--v=2",
        "--tracing=false",
        "--metrics-endpoint-auth=false",
        "--enable-pprof=false",
        "--health-checking=true",
        "--refresh-metrics-interval",
        "50ms",
        "--kv-cache-usage-percentage-metric",
        "vllm:kv_cache_usage_perc",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    runs.push(tokio::spawn(bounded(
        "upstream-deployment-args".into(),
        upstream,
    )));
    for run in runs {
        run.await.unwrap();
    }
}
