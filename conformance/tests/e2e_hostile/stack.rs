//! The quickstart run as `cargo xtask up` runs it, on free ports, with the handles the
//! hostile-client test needs: each pool's replicas, the pickers' and BBR's metrics
//! addresses and process ids.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_conformance::client::HttpClient;
use switchyard_local::envoy;
use switchyard_local::plan::PlanOptions;
use switchyard_local::ports;
use switchyard_local::running::{RunningStack, StackOptions};
use switchyard_local::stack::LocalStack;

pub const LLAMA: &str = "meta-llama/Llama-3.1-8B-Instruct";
pub const QWEN: &str = "Qwen/Qwen3-32B";
pub const LLAMA_POOL: &str = "vllm-llama3-8b";
pub const QWEN_POOL: &str = "vllm-qwen3-32b";

/// `target/<profile>`: where `cargo xtask test` built the binaries (or `SWITCHYARD_BIN_DIR`).
fn binaries_dir() -> PathBuf {
    match std::env::var_os("SWITCHYARD_BIN_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf(),
    }
}

pub struct Stack {
    _dir: tempfile::TempDir,
    _run: tempfile::TempDir,
    pub running: RunningStack,
    pub client: HttpClient,
}

impl Stack {
    pub async fn start() -> Self {
        let Ok(envoy) = envoy::locate() else {
            panic!("Envoy not found: set SWITCHYARD_ENVOY or run `cargo xtask tools`");
        };
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(source).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        // Every picker as it runs against Kubernetes: no client's steering header is believed
        // (standalone mode would otherwise trust the local gateway's clients).
        let endpoints = dir.path().join("local-endpoints.yaml");
        let text = std::fs::read_to_string(&endpoints).unwrap().replace(
            "\n  engine: ",
            "\n  pickerArgs: [\"--trust-client-headers=never\"]\n  engine: ",
        );
        assert_eq!(text.matches("pickerArgs").count(), 3, "{text}");
        std::fs::write(&endpoints, text).unwrap();
        let run = tempfile::tempdir().unwrap();
        let plan_options = PlanOptions {
            listener_port: ports::free_port().unwrap(),
            admin_port: ports::free_port().unwrap(),
            first_port: 0,
            ..PlanOptions::default()
        };
        let stack = LocalStack::load(dir.path(), &plan_options).unwrap();
        let options = StackOptions {
            binaries: binaries_dir(),
            envoy,
            run_dir: run.path().join("run"),
            start_timeout: Duration::from_secs(60),
        };
        let running = RunningStack::start(stack, &options, |_, _| {})
            .await
            .unwrap();
        Self {
            _dir: dir,
            _run: run,
            running,
            client: HttpClient::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// The simulator replicas of `pool`.
    pub fn replicas(&self, pool: &str) -> Vec<SocketAddr> {
        self.running
            .stack
            .plan
            .pools
            .iter()
            .filter(|p| p.pool.name == pool)
            .flat_map(|p| p.simulators.iter().flat_map(|s| s.endpoints.clone()))
            .collect()
    }

    /// Every replica of every pool.
    pub fn all_replicas(&self) -> Vec<SocketAddr> {
        let plan = &self.running.stack.plan;
        plan.pools
            .iter()
            .flat_map(|p| p.simulators.iter().flat_map(|s| s.endpoints.clone()))
            .collect()
    }

    /// `(process name, metrics address)` of BBR and every picker.
    pub fn metrics_pages(&self) -> Vec<(String, SocketAddr)> {
        let plan = &self.running.stack.plan;
        std::iter::once(("bbr".to_owned(), plan.bbr.metrics))
            .chain(
                plan.pools
                    .iter()
                    .map(|p| (format!("epp-{}", p.pool.name), p.picker.metrics)),
            )
            .collect()
    }

    /// The pid of the process named `name` (`bbr`, `epp-<pool>`).
    pub fn pid(&self, name: &str) -> u32 {
        self.running
            .processes
            .iter()
            .find(|p| p.spec.name == name)
            .map(|p| p.child.pid())
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// A process's log tail, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        self.running
            .processes
            .iter()
            .find(|p| p.spec.name == name)
            .map(|p| p.child.log_tail(30))
            .unwrap_or_default()
    }
}

/// Peak resident memory of `pid` in bytes (`VmHWM`), from `/proc`.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"));
    kib * 1024
}
