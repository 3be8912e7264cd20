//! A whole local gateway running: every process of a [`LocalStack`] started in order
//! (simulators, BBR, pickers), each waited for by its [`Readiness`] check, then Envoy on the
//! translated configuration. `cargo xtask up` and the end-to-end conformance suite both start
//! the stack through [`RunningStack::start`], so what the suite tests is what a user runs.
//!
//! Every process is a [`ChildProcess`]: it logs to `<run dir>/<name>.log` and stops when its
//! handle is dropped, so dropping the [`RunningStack`] stops everything (Envoy first, then the
//! rest in reverse start order).

pub mod health;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::client::HttpClient;
use crate::error::{Error, Result};
use crate::gateway::GatewayEnvoy;
use crate::process::{ChildProcess, TAIL_LINES};
use crate::stack::{LocalStack, ProcessSpec, Program, Readiness, StackFiles};
use crate::vllm;

/// How often readiness checks are retried.
const READY_POLL: Duration = Duration::from_millis(50);

/// Where the binaries are and how long each process may take to become ready.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The directory holding `switchyard-sim`, `switchyard-bbr` and `switchyard-epp`.
    pub binaries: PathBuf,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// Logs and configuration files go here; created if missing.
    pub run_dir: PathBuf,
    /// Longest wait for one process to become ready.
    pub start_timeout: Duration,
}

/// One started process and what it was started as.
#[derive(Debug)]
pub struct StartedProcess {
    /// The plan's entry.
    pub spec: ProcessSpec,
    /// The running child.
    pub child: ChildProcess,
}

/// The running gateway. Dropping it stops every process.
#[derive(Debug)]
pub struct RunningStack {
    /// What was planned.
    pub stack: LocalStack,
    /// The files the processes read.
    pub files: StackFiles,
    /// Envoy; declared before `processes` so it stops first.
    pub envoy: GatewayEnvoy,
    /// Every other process, in start order.
    pub processes: Vec<StartedProcess>,
    run_dir: PathBuf,
}

// === impl RunningStack ===

impl RunningStack {
    /// Writes the stack's files under `options.run_dir`, starts every process in order
    /// (each one ready before the next starts) and then Envoy. `on_ready` is called after
    /// each process becomes ready (for progress output).
    pub async fn start(
        stack: LocalStack,
        options: &StackOptions,
        mut on_ready: impl FnMut(&StartedProcess, Duration),
    ) -> Result<Self> {
        std::fs::create_dir_all(&options.run_dir)
            .map_err(Error::io(format!("creating {}", options.run_dir.display())))?;
        let files = stack.write(&options.run_dir)?;
        let mut processes: Vec<StartedProcess> = Vec::new();
        let (real_vllm, specs): (Vec<_>, Vec<_>) = stack
            .processes(&files)
            .into_iter()
            .partition(|spec| spec.program == Program::Vllm);
        // Real vLLM pods take half a minute or more each to load: start them all, then wait.
        let mut loading = Vec::new();
        for spec in real_vllm {
            loading.push((spawn_vllm(&spec, options)?, spec, Instant::now()));
        }
        for (mut child, spec, started) in loading {
            let timeout = options.start_timeout.max(vllm::START_TIMEOUT);
            wait_ready(&mut child, &spec.ready, timeout).await?;
            let process = StartedProcess { spec, child };
            on_ready(&process, started.elapsed());
            processes.push(process);
        }
        for spec in specs {
            let binary = options.binaries.join(spec.program.binary_name());
            if !binary.is_file() {
                return Err(Error::Io {
                    context: format!(
                        "{} is missing: build it with `cargo build --release -p \
                         switchyard-sim -p switchyard-bbr -p switchyard-epp --bins` (or let \
                         `cargo xtask up` do it)",
                        binary.display()
                    ),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            let mut cmd = Command::new(&binary);
            cmd.args(&spec.args);
            let log = options.run_dir.join(format!("{}.log", spec.name));
            let started = Instant::now();
            let mut child = ChildProcess::spawn(spec.name.clone(), &cmd, &log)?;
            wait_ready(&mut child, &spec.ready, options.start_timeout).await?;
            let process = StartedProcess { spec, child };
            on_ready(&process, started.elapsed());
            processes.push(process);
        }
        let envoy = GatewayEnvoy::start(
            &options.envoy,
            &files.envoy,
            &options.run_dir.join("envoy.log"),
            options.start_timeout,
        )
        .await?;
        Ok(Self {
            stack,
            files,
            envoy,
            processes,
            run_dir: options.run_dir.clone(),
        })
    }

    /// `http://<gateway listener>/<path>`.
    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    /// The directory holding the logs and configuration.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The process named `name` (as in [`ProcessSpec::name`], e.g. `epp-vllm-llama3-8b`).
    pub fn process_mut(&mut self, name: &str) -> Option<&mut StartedProcess> {
        self.processes.iter_mut().find(|p| p.spec.name == name)
    }

    /// Every child, Envoy first, for [`crate::process::supervise`].
    pub fn children_mut(&mut self) -> Vec<&mut ChildProcess> {
        let mut children = vec![self.envoy.process_mut()];
        children.extend(self.processes.iter_mut().map(|p| &mut p.child));
        children
    }

    /// Starts the process named `name` again with the same command line (after a test
    /// stopped it), waiting until it is ready.
    pub async fn restart(&mut self, name: &str, options: &StackOptions) -> Result<()> {
        let run_dir = self.run_dir.clone();
        let Some(process) = self.process_mut(name) else {
            return Err(Error::Admin(format!(
                "no process named {name} in the stack"
            )));
        };
        process.child.stop()?;
        if process.spec.program == Program::Vllm {
            process.child = spawn_vllm(&process.spec, options)?;
            let timeout = options.start_timeout.max(vllm::START_TIMEOUT);
            return wait_ready(&mut process.child, &process.spec.ready, timeout).await;
        }
        let mut cmd = Command::new(options.binaries.join(process.spec.program.binary_name()));
        cmd.args(&process.spec.args);
        let log = run_dir.join(format!("{name}.log"));
        process.child = ChildProcess::spawn(name, &cmd, &log)?;
        wait_ready(
            &mut process.child,
            &process.spec.ready,
            options.start_timeout,
        )
        .await
    }
}

/// Starts one real vLLM pod (`wait_ready` with at least [`vllm::START_TIMEOUT`] then waits
/// for its `/health`: vLLM takes half a minute or more to load).
fn spawn_vllm(spec: &ProcessSpec, options: &StackOptions) -> Result<ChildProcess> {
    let install = vllm::Install::locate();
    if let Some(missing) = install.missing() {
        return Err(Error::Io {
            context: missing,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let mut cmd = Command::new(install.python());
    cmd.args(&spec.args);
    vllm::set_environment(&mut cmd, &install);
    let log = options.run_dir.join(format!("{}.log", spec.name));
    ChildProcess::spawn(spec.name.clone(), &cmd, &log)
}

/// Waits until `ready` holds for `child`, failing early with its log if it exits.
pub async fn wait_ready(
    child: &mut ChildProcess,
    ready: &Readiness,
    timeout: Duration,
) -> Result<()> {
    let client = HttpClient::new();
    let started = Instant::now();
    loop {
        child.fail_if_exited()?;
        let (ok, what) = match ready {
            Readiness::Tcp(addr) => {
                let ok = matches!(
                    tokio::time::timeout(READY_POLL, tokio::net::TcpStream::connect(addr)).await,
                    Ok(Ok(_))
                );
                (ok, format!("nothing accepted TCP connections on {addr}"))
            }
            Readiness::Http(urls) => {
                let mut ok = true;
                for url in urls {
                    let answered = client.get(url, &[]).await;
                    if !answered.is_ok_and(|r| r.status == StatusCode::OK) {
                        ok = false;
                        break;
                    }
                }
                (ok, format!("GET {} did not answer 200", urls.join(", ")))
            }
            Readiness::GrpcHealth { addr, service } => {
                let status = health::check(*addr, service).await;
                let ok = matches!(status, Ok(health::Status::Serving));
                let detail = match status {
                    Ok(status) => format!("{status:?}"),
                    Err(err) => err.to_string(),
                };
                (
                    ok,
                    format!("grpc.health.v1 at {addr} for {service:?} was not SERVING ({detail})"),
                )
            }
        };
        if ok {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(Error::NotReady {
                name: child.name().to_owned(),
                pid: child.pid(),
                waited: timeout,
                what,
                log: child.log_path().to_path_buf(),
                tail: child.log_tail(TAIL_LINES),
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
