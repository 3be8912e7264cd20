//! One call from a manifest directory to everything a local gateway needs on disk: the
//! manifests and endpoints file read and checked, the process plan, the Envoy configuration,
//! and the files the processes read (BBR's base-model mappings, each picker's endpoints).
//! `cargo xtask up DIR` loads a [`LocalStack`], writes it, starts [`LocalStack::processes`]
//! in order (each with `process::ChildProcess`, waiting for its [`Readiness`]), then Envoy
//! with `gateway::GatewayEnvoy::start` on [`StackFiles::envoy`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::endpoints::{Engine, FILE_NAME, LocalEndpoints};
use crate::error::{Error, Result};
use crate::plan::{LocalPlan, PlanOptions, plan};
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

/// Which binary a planned process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `switchyard-sim`, one simulated pod.
    Simulator,
    /// `switchyard-bbr`.
    Bbr,
    /// `switchyard-epp`, one pool's picker.
    Picker,
    /// A real `vllm serve` (the venv's Python running the launcher), one `engine:
    /// vllm-real` pod; found through [`crate::vllm::Install`], not the binaries directory.
    Vllm,
}

impl Program {
    /// The binary's name (as `cargo build` names it).
    pub fn binary_name(self) -> &'static str {
        match self {
            Self::Simulator => "switchyard-sim",
            Self::Bbr => "switchyard-bbr",
            Self::Picker => "switchyard-epp",
            Self::Vllm => "python",
        }
    }
}

/// When a started process counts as ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Every URL answers `GET` with 200.
    Http(Vec<String>),
    /// The address accepts TCP connections.
    Tcp(SocketAddr),
    /// The `grpc.health.v1` service at `addr` reports `service` SERVING (for the picker,
    /// `readiness`: its endpoints file has been read into the pool).
    GrpcHealth {
        /// The health listener.
        addr: SocketAddr,
        /// The service name asked about.
        service: &'static str,
    },
}

/// The health service name BBR reports SERVING on once it serves.
pub const BBR_HEALTH_SERVICE: &str = "";
/// The health service name a picker reports SERVING on once its pool is synced (upstream's
/// readiness probe).
pub const PICKER_HEALTH_SERVICE: &str = "readiness";

/// One process to start: `<binary dir>/<program> <args>`, logging to `<name>.log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Unique among the stack's processes, e.g. `sim-vllm-llama3-8b-0`, `epp-vllm-llama3-8b`.
    pub name: String,
    /// The binary.
    pub program: Program,
    /// Its complete command line after the program.
    pub args: Vec<String>,
    /// When it is ready.
    pub ready: Readiness,
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

    /// Every process to start before Envoy, in order: the simulators (so the pickers' first
    /// scrape finds them), BBR, then the pickers. `files` says where [`LocalStack::write`]
    /// put the files they read.
    pub fn processes(&self, files: &StackFiles) -> Vec<ProcessSpec> {
        let mut processes = Vec::new();
        for pool in &self.plan.pools {
            let real = self
                .endpoints
                .pools
                .iter()
                .any(|e| e.key() == pool.pool && e.engine == Engine::VllmReal);
            for sim in &pool.simulators {
                processes.push(ProcessSpec {
                    name: format!("{}-{}", if real { "vllm" } else { "sim" }, sim.name),
                    program: if real {
                        Program::Vllm
                    } else {
                        Program::Simulator
                    },
                    args: sim.args.clone(),
                    ready: Readiness::Http(sim.ready_urls.clone()),
                });
            }
        }
        let bbr = &self.plan.bbr;
        let mut args = bbr.args.clone();
        args.push("--base-model-file".to_owned());
        args.push(files.bbr_base_models.display().to_string());
        processes.push(ProcessSpec {
            name: "bbr".to_owned(),
            program: Program::Bbr,
            args,
            ready: Readiness::GrpcHealth {
                addr: bbr.health,
                service: BBR_HEALTH_SERVICE,
            },
        });
        for pool in &self.plan.pools {
            let mut args = pool.picker.args.clone();
            if let Some((_, path)) = files.picker_files.iter().find(|(key, _)| *key == pool.pool) {
                args.push("--endpoints-file".to_owned());
                args.push(path.display().to_string());
            }
            processes.push(ProcessSpec {
                name: format!("epp-{}", pool.pool.name),
                program: Program::Picker,
                args,
                ready: Readiness::GrpcHealth {
                    addr: pool.picker.health,
                    service: PICKER_HEALTH_SERVICE,
                },
            });
        }
        processes
    }
}
