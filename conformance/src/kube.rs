//! A real Kubernetes control plane for the suites: etcd and kube-apiserver built from their
//! Go modules (`cargo xtask kube build`), started on loopback per test, envtest-style.
//!
//! - [`ControlPlane::start`]: fresh PKI, random free ports, RBAC authorization, TokenRequest,
//!   an admin client (group `system:masters`); waits for `/readyz`, installs the Gateway API
//!   standard CRDs and Switchyard's CRDs; stops both processes on drop.
//! - [`ControlPlane::service_account`]: a client and a kubeconfig for any ServiceAccount.
//! - [`ControlPlane::kubelet`]: a fake Node and Pods whose status the test sets.
//! - [`objects`]: YAML files to objects, created or replaced through discovery.
//!
//! nextest runs every test in its own process, so "per test binary" means per test: keep the
//! `e2e_kube_*` binaries to a few tests each (a start costs a few seconds).
//!
//! ```no_run
//! use switchyard_conformance::kube::ControlPlane;
//!
//! # async fn example() -> switchyard_conformance::kube::Result<()> {
//! let plane = ControlPlane::start().await?;
//! let epp = plane.service_account("ns", "epp").await?;
//! println!("run the EPP with --kubeconfig {}", epp.kubeconfig.display());
//! # Ok(())
//! # }
//! ```

pub mod accounts;
pub mod audit;
pub mod bins;
pub mod error;
pub mod kubelet;
pub mod objects;
pub mod pki;
pub mod plane;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::Client;
use tempfile::TempDir;

pub use accounts::AccountAccess;
pub use bins::KubeBins;
pub use error::{Error, Result};
pub use kubelet::{Kubelet, PodTemplate};
pub use plane::Layout;
use switchyard_local::process::ChildProcess;

/// How long the API server may take to become ready; a cached start takes a few seconds,
/// but two cores shared with a compiling workspace can stretch that.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Switchyard's CRDs as `crdgen` writes them, relative to the workspace root.
pub const SWITCHYARD_CRDS: &str = "charts/crds/switchyard-crds.yaml";

/// A running etcd and kube-apiserver, stopped and deleted on drop.
pub struct ControlPlane {
    // Field order is drop order: the API server stops before its etcd.
    apiserver: ChildProcess,
    etcd: ChildProcess,
    client: Client,
    layout: Layout,
    bins: KubeBins,
    startup: Duration,
    crds: Vec<String>,
    _dir: TempDir,
}

impl ControlPlane {
    /// Starts a control plane from the binaries [`KubeBins::locate`] finds, with the Gateway
    /// API and Switchyard CRDs installed.
    pub async fn start() -> Result<Self> {
        let bins = KubeBins::locate()?;
        let files = crd_files(&bins)?;
        Self::start_from(bins, &files).await
    }

    /// Starts a control plane with only the CRDs in `files` (upstream's, say).
    pub async fn start_with_crds(files: &[PathBuf]) -> Result<Self> {
        Self::start_from(KubeBins::locate()?, files).await
    }

    async fn start_from(bins: KubeBins, files: &[PathBuf]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-kube-")
            .tempdir()
            .map_err(Error::io("creating the control plane's state directory"))?;
        let started = Instant::now();
        let layout = Layout::prepare(dir.path())?;
        let mut etcd =
            ChildProcess::spawn("etcd", &layout.etcd_command(&bins), &layout.etcd_log())?;
        let mut apiserver = ChildProcess::spawn(
            "kube-apiserver",
            &layout.apiserver_command(&bins),
            &layout.apiserver_log(),
        )?;
        let client = plane::client_from(&layout.kubeconfig).await?;
        plane::wait_ready(&client, READY_TIMEOUT, || {
            etcd.fail_if_exited()?;
            apiserver.fail_if_exited()?;
            Ok(())
        })
        .await?;
        let crds = objects::install_crds(&client, files).await?;
        let startup = started.elapsed();
        tracing::info!(?startup, url = %layout.url(), crds = crds.len(), "control plane ready");
        Ok(Self {
            apiserver,
            etcd,
            client,
            layout,
            bins,
            startup,
            crds,
            _dir: dir,
        })
    }

    /// The admin client (`system:masters`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.layout.kubeconfig
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.layout.url()
    }

    /// Files and ports.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The binaries it runs (and Helm beside them).
    pub fn bins(&self) -> &KubeBins {
        &self.bins
    }

    /// From spawning the processes to ready with the CRDs Established.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The CRDs installed at start.
    pub fn crds(&self) -> &[String] {
        &self.crds
    }

    /// The API server's process, for tests that stop or inspect it.
    pub fn apiserver_process(&mut self) -> &mut ChildProcess {
        &mut self.apiserver
    }

    /// etcd's process.
    pub fn etcd_process(&mut self) -> &mut ChildProcess {
        &mut self.etcd
    }

    /// Stops the API server (etcd keeps the state), waits `down_for`, starts it again on the
    /// same port and waits for `/readyz`: clients see it go away and come back.
    pub async fn restart_apiserver(&mut self, down_for: Duration) -> Result<()> {
        self.apiserver.stop()?;
        tokio::time::sleep(down_for).await;
        self.apiserver = ChildProcess::spawn(
            "kube-apiserver",
            &self.layout.apiserver_command(&self.bins),
            &self.layout.apiserver_log(),
        )?;
        let (apiserver, etcd) = (&mut self.apiserver, &mut self.etcd);
        plane::wait_ready(&self.client, READY_TIMEOUT, || {
            etcd.fail_if_exited()?;
            apiserver.fail_if_exited()?;
            Ok(())
        })
        .await
    }

    /// A client and kubeconfig for ServiceAccount `namespace/name`, both created if missing.
    pub async fn service_account(&self, namespace: &str, name: &str) -> Result<AccountAccess> {
        accounts::service_account(
            &self.client,
            &self.layout.url(),
            &self.layout.pki.serving_ca,
            &self.layout.dir,
            namespace,
            name,
        )
        .await
    }

    /// The fake kubelet on Node `name`.
    pub async fn kubelet(&self, name: &str) -> Result<Kubelet> {
        Kubelet::register(self.client.clone(), name).await
    }
}

/// The Gateway API CRD files and Switchyard's.
pub fn crd_files(bins: &KubeBins) -> Result<Vec<PathBuf>> {
    let mut files = objects::yaml_files(&bins.gateway_api_crds)?;
    files.push(bins::workspace_root().join(SWITCHYARD_CRDS));
    Ok(files)
}

/// A control plane left running after its starter exits (`cargo xtask kube up`).
#[derive(Debug)]
pub struct Detached {
    /// Files and ports.
    pub layout: Layout,
    /// etcd's pid.
    pub etcd_pid: u32,
    /// kube-apiserver's pid.
    pub apiserver_pid: u32,
    /// From spawning to ready with the CRDs Established.
    pub startup: Duration,
    /// From spawning to `/readyz` answering ok (the rest of `startup` is the CRDs).
    pub apiserver_ready: Duration,
    /// The CRDs installed.
    pub crds: Vec<String>,
}

/// Starts a control plane in `dir` whose processes outlive the caller: each in its own
/// process group, logs in `dir/logs/`. Stop it with SIGTERM to both pids.
pub async fn start_detached(bins: &KubeBins, dir: &Path) -> Result<Detached> {
    let started = Instant::now();
    let layout = Layout::prepare(dir)?;
    // The client first: once the processes run, every error path must stop them.
    let client = plane::client_from(&layout.kubeconfig).await?;
    let mut etcd = spawn_detached(&mut layout.etcd_command(bins), &layout.etcd_log())?;
    let mut apiserver =
        match spawn_detached(&mut layout.apiserver_command(bins), &layout.apiserver_log()) {
            Ok(child) => child,
            Err(err) => {
                let _ = etcd.kill();
                return Err(err);
            }
        };
    let ready = plane::wait_ready(&client, READY_TIMEOUT, || {
        for (name, child, log) in [
            ("etcd", &mut etcd, layout.etcd_log()),
            ("kube-apiserver", &mut apiserver, layout.apiserver_log()),
        ] {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Process(switchyard_local::Error::ExitedEarly {
                    name: name.to_owned(),
                    pid: child.id(),
                    status: status.to_string(),
                    tail: switchyard_local::process::log_tail(&log, 40),
                    log,
                }));
            }
        }
        Ok(())
    })
    .await;
    if let Err(err) = ready {
        let _ = apiserver.kill();
        let _ = etcd.kill();
        return Err(err);
    }
    let apiserver_ready = started.elapsed();
    let crds = match objects::install_crds(&client, &crd_files(bins)?).await {
        Ok(crds) => crds,
        Err(err) => {
            // Nobody would be told the pids of a half-started plane: stop it here.
            let _ = apiserver.kill();
            let _ = etcd.kill();
            return Err(err);
        }
    };
    Ok(Detached {
        etcd_pid: etcd.id(),
        apiserver_pid: apiserver.id(),
        layout,
        startup: started.elapsed(),
        apiserver_ready,
        crds,
    })
}

fn spawn_detached(cmd: &mut std::process::Command, log: &Path) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let out =
        std::fs::File::create(log).map_err(Error::io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(Error::io(format!("duplicating {}", log.display())))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(Error::io(format!("starting {:?}", cmd.get_program())))
}
