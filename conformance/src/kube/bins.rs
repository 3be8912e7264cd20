//! Where the harness finds kube-apiserver, etcd, helm and the Gateway API CRDs.
//!
//! `cargo xtask kube build` builds them from the Go modules pinned under `xtask/go/`, caches
//! them under `~/.cache/switchyard/kube/`, and links them into one directory,
//! `target/tools/kube/`. The harness reads that directory, or the one named by
//! [`BIN_DIR_ENV`] (which `cargo xtask test` exports). A missing file is an error that says
//! to run the build, never a skipped test.

use std::path::{Path, PathBuf};

use super::error::{Error, Result};

/// Environment variable naming the directory with the control plane's binaries.
pub const BIN_DIR_ENV: &str = "SWITCHYARD_KUBE_BIN_DIR";
/// The API server's executable in that directory.
pub const KUBE_APISERVER: &str = "kube-apiserver";
/// etcd's executable.
pub const ETCD: &str = "etcd";
/// Helm's executable.
pub const HELM: &str = "helm";
/// The directory of the Gateway API standard-channel CRD files.
pub const GATEWAY_API_CRDS: &str = "gateway-api-crds";

/// The located files, each checked to exist.
#[derive(Debug, Clone)]
pub struct KubeBins {
    /// The directory they were found in.
    pub dir: PathBuf,
    /// `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `etcd`.
    pub etcd: PathBuf,
    /// The Gateway API CRD directory.
    pub gateway_api_crds: PathBuf,
}

impl KubeBins {
    /// Finds the binaries in [`BIN_DIR_ENV`] or, without it, in the workspace's
    /// `target/tools/kube/`.
    pub fn locate() -> Result<Self> {
        Self::in_dir(&default_dir())
    }

    /// Finds the binaries in `dir`.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            kube_apiserver: existing(dir, KUBE_APISERVER)?,
            etcd: existing(dir, ETCD)?,
            gateway_api_crds: existing(dir, GATEWAY_API_CRDS)?,
        })
    }

    /// Helm, for the suites that install charts.
    pub fn helm(&self) -> Result<PathBuf> {
        existing(&self.dir, HELM)
    }
}

/// The directory [`KubeBins::locate`] reads.
pub fn default_dir() -> PathBuf {
    std::env::var_os(BIN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("tools").join("kube"))
}

/// The workspace root: this crate lives one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::BinariesMissing {
            what: name.to_owned(),
            path,
            env: BIN_DIR_ENV,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_how_to_build_them() {
        let err = KubeBins::in_dir(Path::new("/nonexistent/switchyard-kube")).expect_err("missing");
        let message = err.to_string();
        assert!(message.contains("cargo xtask kube build"), "{message}");
        assert!(message.contains(BIN_DIR_ENV), "{message}");
        assert!(message.contains("kube-apiserver"), "{message}");
    }
}
