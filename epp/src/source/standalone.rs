//! The standalone pool source: a YAML file of endpoints, objectives and rewrites, for running
//! the EPP without Kubernetes (`--endpoints-file`). The file is polled for changes; a bad
//! edit is reported with the file and field and the last good state stays in force.
//!
//! ```yaml
//! poolName: chat-pool            # optional; defaults to --pool-name
//! targetPorts: [8000]            # ports of endpoints whose address has none
//! endpoints:
//! - name: vllm-0                 # unique; the endpoint is named <name>-rank-<i>
//!   address: 10.0.0.7            # an IP (takes targetPorts) or ip:port / [v6]:port
//!   labels: {inference.networking.k8s.io/engine-type: vllm}
//!   ready: true                  # optional, default true
//! - name: vllm-1
//!   address: 10.0.0.8:8001
//! objectives:                    # InferenceObjective name → priority
//! - {name: critical, priority: 10}
//! rewrites:                      # InferenceModelRewrite specs (rules as in the CRD)
//! - name: canary
//!   rules:
//!   - matches: [{model: {value: llama}}]
//!     targets: [{modelRewrite: llama-v2, weight: 90}, {modelRewrite: llama-v3, weight: 10}]
//! ```
//!
//! Each entry becomes a pod of the [`PoolState`], so the file and the Kubernetes watcher
//! share one merge rule. An address with a port becomes a pod whose `active-ports`
//! annotation names that port; the pool's target ports are the union of `targetPorts` and
//! every explicit port, in order of appearance.
//!
//! Replace the file atomically (write a new file and rename it over the old one, as the
//! kubelet does for ConfigMap volumes): a poll that catches an in-place write half done reads
//! whatever is there, and a truncated file that still parses (an empty one is an empty pool)
//! would be applied until the next poll.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use switchyard_api::protocol::ACTIVE_PORTS_ANNOTATION;
use switchyard_api::reference::PoolObjectReference;
use switchyard_api::{InferenceModelRewriteRule, InferenceModelRewriteSpec};

use crate::datastore::PodView;
use crate::error::{Error, Result};
use crate::source::{PoolSource, PoolState};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    pool_name: Option<String>,
    #[serde(default)]
    target_ports: Vec<u16>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    objectives: Vec<RawObjective>,
    #[serde(default)]
    rewrites: Vec<RawRewrite>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEndpoint {
    name: String,
    address: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "default_ready")]
    ready: bool,
}

fn default_ready() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawObjective {
    name: String,
    #[serde(default)]
    priority: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRewrite {
    name: String,
    rules: Vec<InferenceModelRewriteRule>,
}

/// Parses the text of an endpoints file. `default_pool` names the pool when the file does
/// not. Errors name the field (`endpoints[1].address`) and say what to write.
pub fn parse(text: &str, default_pool: &str) -> std::result::Result<PoolState, String> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    let pool_name = raw.pool_name.unwrap_or_else(|| default_pool.to_owned());
    if raw.target_ports.contains(&0) {
        return Err("targetPorts: 0 is not a port; use 1-65535".into());
    }
    let mut target_ports: Vec<u16> = Vec::new();
    let add_port = |port: u16, ports: &mut Vec<u16>| {
        if !ports.contains(&port) {
            ports.push(port);
        }
    };
    for port in &raw.target_ports {
        add_port(*port, &mut target_ports);
    }
    let mut names = HashSet::new();
    let mut pods = Vec::with_capacity(raw.endpoints.len());
    for (i, endpoint) in raw.endpoints.into_iter().enumerate() {
        let field = format!("endpoints[{i}]");
        if endpoint.name.trim().is_empty() {
            return Err(format!(
                "{field}.name: empty; give each endpoint a unique name"
            ));
        }
        if !names.insert(endpoint.name.clone()) {
            return Err(format!(
                "{field}.name: `{}` is used twice; endpoint names must be unique",
                endpoint.name
            ));
        }
        let (ip, ports) = match endpoint.address.trim().parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => (addr.ip(), vec![addr.port()]),
            Ok(_) => {
                return Err(format!(
                    "{field}.address: `{}` has port 0; use 1-65535",
                    endpoint.address
                ));
            }
            Err(_) => {
                let bare = endpoint.address.trim();
                let bare = bare
                    .strip_prefix('[')
                    .and_then(|b| b.strip_suffix(']'))
                    .unwrap_or(bare);
                let ip = bare.parse::<IpAddr>().map_err(|_| {
                    format!(
                        "{field}.address: `{}` is not an IP address or ip:port; write e.g. \
                         `10.0.0.7`, `10.0.0.7:8000` or `[fd00::7]:8000`",
                        endpoint.address
                    )
                })?;
                if raw.target_ports.is_empty() {
                    return Err(format!(
                        "{field}.address: `{}` has no port and the file sets no targetPorts; \
                         add `:port` or a top-level `targetPorts: [8000]`",
                        endpoint.address
                    ));
                }
                (ip, raw.target_ports.clone())
            }
        };
        for port in &ports {
            add_port(*port, &mut target_ports);
        }
        let active = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        pods.push(PodView {
            name: endpoint.name,
            ip: Some(ip),
            labels: endpoint.labels,
            annotations: BTreeMap::from([(ACTIVE_PORTS_ANNOTATION.to_owned(), active)]),
            ready: endpoint.ready,
            deleting: false,
        });
    }
    let mut objectives = HashMap::new();
    for (i, objective) in raw.objectives.into_iter().enumerate() {
        if objective.name.trim().is_empty() {
            return Err(format!("objectives[{i}].name: empty"));
        }
        if objectives
            .insert(objective.name.clone(), objective.priority)
            .is_some()
        {
            return Err(format!(
                "objectives[{i}].name: `{}` is listed twice",
                objective.name
            ));
        }
    }
    let mut rewrites = Vec::with_capacity(raw.rewrites.len());
    for (i, rewrite) in raw.rewrites.into_iter().enumerate() {
        check_rules(&format!("rewrites[{i}] ({})", rewrite.name), &rewrite.rules)?;
        rewrites.push(Arc::new(InferenceModelRewriteSpec {
            pool_ref: PoolObjectReference::to_pool(&pool_name),
            rules: rewrite.rules,
        }));
    }
    Ok(PoolState {
        pool_name,
        target_ports,
        pods,
        objectives,
        rewrites,
    })
}

fn check_rules(
    field: &str,
    rules: &[InferenceModelRewriteRule],
) -> std::result::Result<(), String> {
    for (r, rule) in rules.iter().enumerate() {
        if rule.targets.is_empty() {
            return Err(format!(
                "{field}.rules[{r}].targets: empty; give at least one {{modelRewrite, weight}}"
            ));
        }
        for (t, target) in rule.targets.iter().enumerate() {
            if target.model_rewrite.trim().is_empty() {
                return Err(format!(
                    "{field}.rules[{r}].targets[{t}].modelRewrite: empty"
                ));
            }
            if let Some(w) = target.weight
                && !(1..=1_000_000).contains(&w)
            {
                return Err(format!(
                    "{field}.rules[{r}].targets[{t}].weight: {w} is outside 1-1000000"
                ));
            }
        }
        let weighted = rule.targets.iter().filter(|t| t.weight.is_some()).count();
        if weighted != 0 && weighted != rule.targets.len() {
            return Err(format!(
                "{field}.rules[{r}].targets: set `weight` on every target or on none"
            ));
        }
        for (m, matched) in rule.matches.iter().enumerate() {
            if matched.model.value.trim().is_empty() {
                return Err(format!(
                    "{field}.rules[{r}].matches[{m}].model.value: empty"
                ));
            }
        }
    }
    Ok(())
}

/// The file's identity for change detection: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reads and parses `path`.
pub fn load(path: &Path, default_pool: &str) -> Result<PoolState> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::EndpointsFile {
        path: path.to_owned(),
        reason: format!("cannot read it: {e}"),
    })?;
    parse(&text, default_pool).map_err(|reason| Error::EndpointsFile {
        path: path.to_owned(),
        reason,
    })
}

/// The endpoints-file source.
#[derive(Debug)]
pub struct StandaloneSource {
    path: PathBuf,
    default_pool: String,
    poll: Duration,
    current: Arc<PoolState>,
    seen: Option<(SystemTime, u64)>,
}

impl StandaloneSource {
    /// Loads `path` once (a bad file fails startup); later changes are picked up every `poll`.
    pub fn open(path: PathBuf, default_pool: &str, poll: Duration) -> Result<Self> {
        // A zero period would make the ticker panic inside the source task, silently ending
        // the reloads; refuse it where the operator sees it.
        if poll.is_zero() {
            return Err(Error::Flag {
                flag: "--endpoints-file-poll-interval",
                reason: "must be greater than zero (e.g. 1s, the default); the file is checked \
                         for changes at that period"
                    .into(),
            });
        }
        let seen = stamp(&path);
        let current = Arc::new(load(&path, default_pool)?);
        Ok(Self {
            path,
            default_pool: default_pool.to_owned(),
            poll,
            current,
            seen,
        })
    }

    /// The state in force.
    pub fn current(&self) -> Arc<PoolState> {
        Arc::clone(&self.current)
    }

    /// Checks the file once: `Ok(Some)` with the new state when it changed and parses,
    /// `Ok(None)` when unchanged, `Err` when it changed but is bad (the previous state
    /// stays current; the same bad content is not reported twice).
    pub fn poll_once(&mut self) -> Result<Option<Arc<PoolState>>> {
        let now = stamp(&self.path);
        if now == self.seen {
            return Ok(None);
        }
        self.seen = now;
        let state = load(&self.path, &self.default_pool)?;
        if state == *self.current {
            return Ok(None);
        }
        self.current = Arc::new(state);
        Ok(Some(self.current()))
    }
}

impl PoolSource for StandaloneSource {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn run(
        mut self,
        updates: tokio::sync::watch::Sender<Arc<PoolState>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        if updates.send(self.current()).is_err() {
            return Ok(());
        }
        let mut ticker = tokio::time::interval(self.poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = ticker.tick() => {}
            }
            match self.poll_once() {
                Ok(Some(state)) => {
                    tracing::info!(
                        file = %self.path.display(),
                        endpoints = state.pods.len(),
                        "endpoints file reloaded",
                    );
                    if updates.send(state).is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => {}
                Err(err) => tracing::error!(%err, "keeping the previous pool state"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
