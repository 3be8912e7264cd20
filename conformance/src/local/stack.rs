//! One call from a manifest directory to everything a local gateway needs on disk: the
//! manifests and endpoints file read and checked, the process plan, the Envoy configuration,
//! and the files the processes read (BBR's base-model mappings, each picker's endpoints).
//! `cargo xtask up DIR` loads a [`LocalStack`], writes it, then starts the planned processes.

use std::path::{Path, PathBuf};

use super::plan::{LocalPlan, PlanOptions, plan};
use super::{FILE_NAME, LocalEndpoints};
use crate::error::{Error, Result};
use crate::translate::{ConfigDir, GatewayConfig, Manifests, PoolKey, translate};

/// A manifest directory, checked and planned.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalStack {
    /// The manifests.
    pub manifests: Manifests,
    /// The directory's [`FILE_NAME`].
    pub endpoints: LocalEndpoints,
    /// The processes and their ports.
    pub plan: LocalPlan,
    /// Envoy's configuration; see [`GatewayConfig::warnings`].
    pub config: GatewayConfig,
}

/// Where [`LocalStack::write`] put things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFiles {
    /// Envoy's bootstrap and watched files: `envoy -c <envoy.bootstrap_path()>`.
    pub envoy: ConfigDir,
    /// BBR's `--base-model-file`.
    pub bbr_base_models: PathBuf,
    /// Each picker's `--endpoints-file`, in plan order.
    pub picker_files: Vec<(PoolKey, PathBuf)>,
}

// === impl LocalStack ===

impl LocalStack {
    /// Reads every manifest under `dir` and `dir/local-endpoints.yaml`, plans the processes
    /// and translates the manifests.
    pub fn load(dir: &Path, options: &PlanOptions) -> Result<Self> {
        let endpoints_path = dir.join(FILE_NAME);
        if !endpoints_path.is_file() {
            return Err(Error::EndpointsFile {
                source_name: endpoints_path.display().to_string(),
                problems: vec![format!(
                    "the file is missing: a local gateway needs it to know which simulator \
                     replicas stand in for each InferencePool's pods; copy \
                     conformance/examples/quickstart/{FILE_NAME} and edit it"
                )],
            });
        }
        let manifests = Manifests::load(dir)?;
        let endpoints = LocalEndpoints::load(&endpoints_path)?;
        let plan = plan(&endpoints, &manifests, options)?;
        let config = translate(&manifests, &plan.gateway)?;
        Ok(Self {
            manifests,
            endpoints,
            plan,
            config,
        })
    }

    /// Writes Envoy's files under `run_dir/envoy/` and the processes' files in `run_dir`.
    /// Called again on a running stack, it changes Envoy's routes and clusters in place.
    pub fn write(&self, run_dir: &Path) -> Result<StackFiles> {
        let envoy = ConfigDir::create(&run_dir.join("envoy"))?;
        envoy.write(&self.config)?;
        let write = |name: String, text: &str| -> Result<PathBuf> {
            let path = envoy.path().with_file_name(name);
            std::fs::write(&path, text)
                .map_err(Error::io(format!("writing {}", path.display())))?;
            Ok(path)
        };
        let bbr_base_models = write(
            "bbr-base-models.yaml".to_owned(),
            &self.plan.bbr.base_model_file,
        )?;
        let mut picker_files = Vec::new();
        for pool in &self.plan.pools {
            let name = format!("epp-{}-{}.yaml", pool.pool.namespace, pool.pool.name);
            picker_files.push((pool.pool.clone(), write(name, &pool.picker.endpoints_file)?));
        }
        Ok(StackFiles {
            envoy,
            bbr_base_models,
            picker_files,
        })
    }
}
