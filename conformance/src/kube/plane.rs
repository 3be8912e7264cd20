//! One control plane's state directory and the two commands that run it.
//!
//! [`Layout::prepare`] picks free loopback ports, generates the PKI and writes the admin
//! kubeconfig; [`Layout::etcd_command`] and [`Layout::apiserver_command`] are envtest's flags
//! (controller-runtime `pkg/internal/testing/controlplane`), plus an explicit advertise
//! address (so a machine without a default route works too) and an audit log. Who runs the commands differs: the
//! test harness supervises them as children ([`super::ControlPlane`]), `cargo xtask kube up`
//! leaves them running in the background. Readiness is the same for both: [`wait_ready`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use super::bins::KubeBins;
use super::error::{Error, Result};
use super::pki::{ADMIN_USER, Pki};
use switchyard_local::ports::free_port;

/// The Service CIDR, as envtest sets it; nothing routes it, Services only need one.
const SERVICE_CIDR: &str = "10.0.0.0/24";
/// What the API server advertises (see [`Layout::apiserver_command`]).
const ADVERTISE_ADDRESS: &str = "192.0.2.1";
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(100);
/// The context name in every kubeconfig the harness writes.
const CONTEXT: &str = "switchyard-test";
/// Every request's metadata (user, verb, resource, status) once answered: the suites read
/// this to prove a component made no forbidden request, and to name the one it did.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
";

/// Files and ports of one control plane.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The state directory; everything below lives in it.
    pub dir: PathBuf,
    /// Certificates and keys.
    pub pki: Pki,
    /// etcd's client port.
    pub etcd_port: u16,
    /// etcd's peer port (unused by a single member, but it must not collide).
    pub etcd_peer_port: u16,
    /// The API server's secure port.
    pub apiserver_port: u16,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Layout {
    /// Creates `dir`, generates the PKI, picks ports and writes `dir/kubeconfig`.
    pub fn prepare(dir: &Path) -> Result<Self> {
        // Absolute: the kubeconfig names the certificates by path, and a relative one would
        // be read relative to the kubeconfig's own directory.
        let dir =
            &std::path::absolute(dir).map_err(Error::io(format!("resolving {}", dir.display())))?;
        std::fs::create_dir_all(dir.join("logs"))
            .map_err(Error::io(format!("creating {}", dir.display())))?;
        let pki = Pki::generate(&dir.join("pki"))?;
        let layout = Self {
            dir: dir.to_path_buf(),
            pki,
            etcd_port: free_port()?,
            etcd_peer_port: free_port()?,
            apiserver_port: free_port()?,
            kubeconfig: dir.join("kubeconfig"),
        };
        let kubeconfig = kubeconfig_json(
            &layout.url(),
            &layout.pki.serving_ca,
            ADMIN_USER,
            json!({
                "client-certificate": layout.pki.admin_cert,
                "client-key": layout.pki.admin_key,
            }),
        );
        write_json(&layout.kubeconfig, &kubeconfig)?;
        std::fs::write(layout.audit_policy(), AUDIT_POLICY)
            .map_err(Error::io("writing the audit policy"))?;
        Ok(layout)
    }

    /// The API server's base URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    /// etcd's log file.
    pub fn etcd_log(&self) -> PathBuf {
        self.dir.join("logs").join("etcd.log")
    }

    /// The API server's log file.
    pub fn apiserver_log(&self) -> PathBuf {
        self.dir.join("logs").join("kube-apiserver.log")
    }

    /// The audit policy file.
    pub fn audit_policy(&self) -> PathBuf {
        self.dir.join("audit-policy.yaml")
    }

    /// The audit log: one JSON event per line.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("logs").join("audit.log")
    }

    /// etcd, single member, no fsync (test data is thrown away).
    pub fn etcd_command(&self, bins: &KubeBins) -> Command {
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let mut cmd = Command::new(&bins.etcd);
        cmd.arg(format!("--data-dir={}", self.dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!(
                "--listen-peer-urls=http://127.0.0.1:{}",
                self.etcd_peer_port
            ))
            .arg("--unsafe-no-fsync=true")
            .arg("--log-level=warn");
        cmd
    }

    /// kube-apiserver with RBAC, client certificates and service-account tokens.
    pub fn apiserver_command(&self, bins: &KubeBins) -> Command {
        let pki = &self.pki;
        let mut cmd = Command::new(&bins.kube_apiserver);
        cmd.arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            self.etcd_port
        ))
        .arg(format!("--cert-dir={}", self.dir.join("pki").display()))
        .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
        .arg(format!(
            "--tls-private-key-file={}",
            pki.serving_key.display()
        ))
        .arg(format!("--secure-port={}", self.apiserver_port))
        .arg("--bind-address=127.0.0.1")
        // The API server refuses a loopback advertise address, and without one it looks for
        // a default route, which a sandbox may lack. Nothing reaches it through the
        // advertised address (the reconciler that would publish it is off), so a
        // documentation address (TEST-NET-1) serves.
        .arg(format!("--advertise-address={ADVERTISE_ADDRESS}"))
        .arg("--endpoint-reconciler-type=none")
        .arg("--authorization-mode=RBAC")
        .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
        .arg("--allow-privileged=true")
        // No controller-manager creates the `default` ServiceAccount or token volumes, so
        // the admission plugin that expects them would refuse every Pod.
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg(format!("--client-ca-file={}", pki.client_ca.display()))
        .arg(format!("--service-account-issuer={}/", self.url()))
        .arg(format!(
            "--service-account-key-file={}",
            pki.sa_pub.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            pki.sa_key.display()
        ))
        .arg(format!(
            "--audit-policy-file={}",
            self.audit_policy().display()
        ))
        .arg(format!("--audit-log-path={}", self.audit_log().display()));
        cmd
    }
}

/// A kubeconfig (JSON, which is YAML too) for `user` with the given credentials.
pub fn kubeconfig_json(
    url: &str,
    ca: &Path,
    user: &str,
    credentials: serde_json::Value,
) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url, "certificate-authority": ca}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    })
}

/// Writes `value` as pretty JSON.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|source| {
        Error::Process(switchyard_local::Error::Json {
            context: format!("encoding {}", path.display()),
            source,
        })
    })?;
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

/// A client for the kubeconfig at `path`.
pub async fn client_from(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            context: format!("using {}", path.display()),
            source,
        })?;
    Client::try_from(config).map_err(Error::api(format!("a client for {}", path.display())))
}

/// Polls `/readyz` until the API server answers `ok`, calling `alive` between polls so a
/// process that died fails at once with its log, and giving up after `timeout`.
pub async fn wait_ready(
    client: &Client,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    loop {
        alive()?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|err| Error::Timeout(format!("building the /readyz request: {err}")))?;
        let last = match client.request_text(request).await {
            Ok(text) if text.trim() == "ok" => return Ok(()),
            Ok(text) => text,
            Err(err) => err.to_string(),
        };
        if started.elapsed() > timeout {
            return Err(Error::Timeout(format!(
                "kube-apiserver was not ready after {timeout:?}; last /readyz answer: {last}"
            )));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
