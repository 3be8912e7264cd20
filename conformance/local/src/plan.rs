//! The processes a local gateway needs, as data: which simulators, BBR and pickers to start,
//! on which ports, with which flags, and the [`GatewayWiring`] the translator turns into
//! Envoy configuration. Nothing is started here; `cargo xtask up` executes the plan.
//!
//! Ports are handed out in order from [`PlanOptions::first_port`], skipping the gateway's
//! listener and admin ports: simulator pods pool by pool (one port per InferencePool target
//! port, so a pod with several target ports is a data-parallel simulator with one engine per
//! port), then BBR, then each pool's picker.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::json;
use switchyard_api::FailureMode;
use switchyard_api::protocol::ENGINE_TYPE_LABEL;

use crate::endpoints::{Engine, LocalEndpoints, PoolEndpoints};
use crate::error::{Error, Result};
use crate::translate::{GatewayWiring, Manifests, PickerHealth, PoolKey, PoolWiring};

mod ports;
use ports::PortAllocator;

/// Where the plan puts things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// The address every process binds (loopback: nothing is reachable from outside).
    pub host: IpAddr,
    /// The gateway's HTTP port.
    pub listener_port: u16,
    /// Envoy's admin port.
    pub admin_port: u16,
    /// The first port handed to simulators, BBR and pickers; 0 asks the OS for a free port
    /// each time instead (tests running side by side).
    pub first_port: u16,
    /// Envoy's per-connection buffer ([`GatewayWiring::buffer_limit_bytes`]).
    pub envoy_buffer_limit_bytes: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            listener_port: 8080,
            admin_port: 19000,
            first_port: 8100,
            envoy_buffer_limit_bytes: GatewayWiring::default().buffer_limit_bytes,
        }
    }
}

/// Everything `cargo xtask up` starts, and how Envoy reaches it.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalPlan {
    /// Input for [`crate::translate::translate`].
    pub gateway: GatewayWiring,
    /// The Body-Based Router.
    pub bbr: BbrProcess,
    /// Per pool, in the endpoints file's order.
    pub pools: Vec<PoolPlan>,
}

/// The BBR process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BbrProcess {
    /// ext_proc gRPC.
    pub grpc: SocketAddr,
    /// `grpc.health.v1`.
    pub health: SocketAddr,
    /// Prometheus metrics.
    pub metrics: SocketAddr,
    /// The `--base-model-file` contents: every base model (itself) and its adapters, so BBR
    /// sets the base-model header that routes match on.
    pub base_model_file: String,
    /// `switchyard-bbr` flags, except `--base-model-file`, whose path the caller chooses.
    pub args: Vec<String>,
}

/// One pool's processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolPlan {
    /// The InferencePool.
    pub pool: PoolKey,
    /// What Envoy does when the picker is down.
    pub failure_mode: FailureMode,
    /// The base model and adapters its pods serve.
    pub model_names: Vec<String>,
    /// Its simulated pods.
    pub simulators: Vec<SimulatorProcess>,
    /// Its endpoint picker.
    pub picker: PickerProcess,
}

/// One simulated pod: a `switchyard-sim` process with one engine per target port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatorProcess {
    /// The pod's name, `<pool>-<i>`.
    pub name: String,
    /// One endpoint per target port.
    pub endpoints: Vec<SocketAddr>,
    /// `switchyard-sim` flags.
    pub args: Vec<String>,
    /// `GET` these until 200 before the pod counts as ready (one per engine).
    pub ready_urls: Vec<String>,
}

/// One pool's endpoint picker (`switchyard-epp` on a standalone endpoints file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickerProcess {
    /// ext_proc gRPC.
    pub grpc: SocketAddr,
    /// `grpc.health.v1`.
    pub health: SocketAddr,
    /// Prometheus metrics.
    pub metrics: SocketAddr,
    /// The pool's endpoints.
    pub endpoints: Vec<PickerEndpoint>,
    /// The `--endpoints-file` contents (the EPP's standalone format: pool name, endpoints,
    /// the pool's InferenceObjectives and InferenceModelRewrites), as JSON, which YAML reads.
    pub endpoints_file: String,
    /// `switchyard-epp` flags, except `--endpoints-file`, whose path the caller chooses.
    pub args: Vec<String>,
}

/// One endpoint in a picker's standalone list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickerEndpoint {
    /// Unique in the pool: the pod's name (`<pool>-<i>`), with `-rank-<r>` added when the pod
    /// has several target ports.
    pub name: String,
    /// The simulated pod it belongs to.
    pub pod: String,
    /// `ip:port`.
    pub address: SocketAddr,
    /// The engine whose metric names to scrape (pod label
    /// `inference.networking.k8s.io/engine-type`).
    pub engine: &'static str,
}

/// Checks `endpoints` against `manifests` and plans every process.
///
/// Every InferencePool needs an entry and every entry needs an InferencePool; all problems
/// are reported at once.
pub fn plan(
    endpoints: &LocalEndpoints,
    manifests: &Manifests,
    options: &PlanOptions,
) -> Result<LocalPlan> {
    let mut problems = Vec::new();
    let declared: BTreeSet<PoolKey> = endpoints.pools.iter().map(PoolEndpoints::key).collect();
    for pool in manifests.pool_keys() {
        if !declared.contains(&pool) {
            problems.push(format!(
                "InferencePool {pool} has no entry: add `- name: {}` with replicas and model \
                 under pools",
                pool.name
            ));
        }
    }
    for entry in &endpoints.pools {
        if manifests.pool(&entry.key()).is_none() {
            problems.push(format!(
                "pool {} has no InferencePool manifest: add one or remove the entry",
                entry.key()
            ));
        }
    }
    let mut ports = PortAllocator::new(options);
    let mut planned = Vec::new();
    for entry in &endpoints.pools {
        let Some(pool) = manifests.pool(&entry.key()) else {
            continue;
        };
        let target_ports = pool.spec.target_ports.len().max(1);
        if entry.engine == Engine::VllmReal && target_ports > 1 {
            problems.push(format!(
                "pool {} has {target_ports} target ports but engine vllm-real runs one vLLM \
                 server per pod on one port: give the InferencePool one target port",
                entry.key()
            ));
        }
        let mut simulators = Vec::new();
        for index in 0..entry.replicas {
            let name = format!("{}-{index}", entry.name);
            let addrs = ports.consecutive(target_ports, &mut problems);
            simulators.push(simulator(entry, name, addrs, options.host));
        }
        planned.push((entry, pool.spec.failure_mode(), simulators));
    }
    let bbr_grpc = ports.next(&mut problems);
    let bbr = BbrProcess {
        grpc: bbr_grpc,
        health: ports.next(&mut problems),
        metrics: ports.next(&mut problems),
        base_model_file: base_model_file(&endpoints.pools),
        args: Vec::new(),
    };
    let bbr = BbrProcess {
        args: bbr_args(&bbr),
        ..bbr
    };
    let mut pools = Vec::new();
    let mut gateway = GatewayWiring {
        listener: SocketAddr::new(options.host, options.listener_port),
        admin: SocketAddr::new(options.host, options.admin_port),
        bbr: Some(bbr.grpc),
        buffer_limit_bytes: options.envoy_buffer_limit_bytes,
        ..GatewayWiring::default()
    };
    for (entry, failure_mode, simulators) in planned {
        let endpoints: Vec<PickerEndpoint> = simulators
            .iter()
            .flat_map(|sim| {
                let ranks = sim.endpoints.len();
                sim.endpoints
                    .iter()
                    .enumerate()
                    .map(move |(rank, address)| PickerEndpoint {
                        name: if ranks == 1 {
                            sim.name.clone()
                        } else {
                            format!("{}-rank-{rank}", sim.name)
                        },
                        pod: sim.name.clone(),
                        address: *address,
                        engine: entry.engine.as_str(),
                    })
            })
            .collect();
        let picker = PickerProcess {
            grpc: ports.next(&mut problems),
            health: ports.next(&mut problems),
            metrics: ports.next(&mut problems),
            endpoints_file: picker_file(&entry.key(), &endpoints, manifests),
            endpoints,
            args: Vec::new(),
        };
        let picker = PickerProcess {
            args: picker_args(entry, &picker),
            ..picker
        };
        gateway.pools.insert(
            entry.key(),
            PoolWiring {
                picker: picker.grpc,
                picker_health: PickerHealth::Grpc {
                    port: picker.health.port(),
                },
                endpoints: picker.endpoints.iter().map(|e| e.address).collect(),
            },
        );
        pools.push(PoolPlan {
            pool: entry.key(),
            failure_mode,
            model_names: entry.model_names().map(str::to_owned).collect(),
            simulators,
            picker,
        });
    }
    if !problems.is_empty() {
        return Err(Error::EndpointsFile {
            source_name: "the local endpoints file".to_owned(),
            problems,
        });
    }
    Ok(LocalPlan {
        gateway,
        bbr,
        pools,
    })
}

fn simulator(
    entry: &PoolEndpoints,
    name: String,
    endpoints: Vec<SocketAddr>,
    host: IpAddr,
) -> SimulatorProcess {
    let first_port = endpoints.first().map_or(0, SocketAddr::port);
    if entry.engine == Engine::VllmReal {
        let install = crate::vllm::Install::locate();
        let ready_urls = vec![format!("http://{host}:{first_port}/health")];
        return SimulatorProcess {
            args: crate::vllm::pod_args(&install, entry, host, first_port),
            name,
            endpoints,
            ready_urls,
        };
    }
    let mut args = vec![
        "--model".to_owned(),
        entry.model.clone(),
        "--engine".to_owned(),
        entry.engine.as_str().to_owned(),
        "--profile".to_owned(),
        entry.profile.as_str().to_owned(),
        "--host".to_owned(),
        host.to_string(),
        "--port".to_owned(),
        first_port.to_string(),
        "--replicas".to_owned(),
        endpoints.len().to_string(),
        "--name-prefix".to_owned(),
        name.clone(),
    ];
    if !entry.served_model_names.is_empty() {
        // vLLM serves the base model only under the listed names once any is given.
        args.push("--served-model-name".to_owned());
        args.push(entry.model.clone());
        args.extend(entry.served_model_names.iter().cloned());
    }
    if !entry.adapters.is_empty() {
        args.push("--lora-modules".to_owned());
        args.extend(entry.adapters.iter().cloned());
    }
    args.extend(entry.simulator_args.iter().cloned());
    let ready_urls = endpoints
        .iter()
        .map(|addr| format!("http://{addr}/health/ready"))
        .collect();
    SimulatorProcess {
        name,
        endpoints,
        args,
        ready_urls,
    }
}

fn picker_args(entry: &PoolEndpoints, picker: &PickerProcess) -> Vec<String> {
    let pool = entry.key();
    let mut args = vec![
        "--pool-name".to_owned(),
        pool.name.clone(),
        "--pool-namespace".to_owned(),
        pool.namespace.clone(),
        "--bind-address".to_owned(),
        picker.grpc.ip().to_string(),
        "--grpc-port".to_owned(),
        picker.grpc.port().to_string(),
        "--grpc-health-port".to_owned(),
        picker.health.port().to_string(),
        "--metrics-port".to_owned(),
        picker.metrics.port().to_string(),
        // Envoy dials the picker's address itself, with no health-checking balancer to tell:
        // nothing to wait for before closing the port on stop.
        "--drain-grace-period=0s".to_owned(),
        // Envoy reaches the picker over loopback in cleartext HTTP/2.
        "--secure-serving=false".to_owned(),
    ];
    args.extend(entry.picker_args.iter().cloned());
    args
}

/// The picker's standalone endpoints file (epp/src/source/standalone.rs).
fn picker_file(pool: &PoolKey, endpoints: &[PickerEndpoint], manifests: &Manifests) -> String {
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "address": e.address.to_string(),
                "labels": { ENGINE_TYPE_LABEL: e.engine },
            })
        })
        .collect();
    let objectives: Vec<serde_json::Value> = manifests
        .objectives_of(pool)
        .iter()
        .map(|o| {
            json!({
                "name": o.metadata.name.as_deref().unwrap_or_default(),
                "priority": o.spec.effective_priority(),
            })
        })
        .collect();
    let rewrites: Vec<serde_json::Value> = manifests
        .rewrites_of(pool)
        .iter()
        .map(|r| {
            json!({
                "name": r.metadata.name.as_deref().unwrap_or_default(),
                "rules": r.spec.rules,
            })
        })
        .collect();
    let file = json!({
        "poolName": pool.name,
        "endpoints": endpoints,
        "objectives": objectives,
        "rewrites": rewrites,
    });
    // Rendering a `Value` cannot fail; the fallback keeps this total anyway.
    serde_json::to_string_pretty(&file).unwrap_or_else(|_| file.to_string()) + "\n"
}

fn bbr_args(bbr: &BbrProcess) -> Vec<String> {
    vec![
        "--bind-address".to_owned(),
        bbr.grpc.ip().to_string(),
        "--grpc-port".to_owned(),
        bbr.grpc.port().to_string(),
        "--grpc-health-port".to_owned(),
        bbr.health.port().to_string(),
        "--metrics-port".to_owned(),
        bbr.metrics.port().to_string(),
        // Upstream's routes (and the quickstart's) match X-Gateway-Model-Name too.
        "--set-model-name-header".to_owned(),
        // No health-checking balancer in front: nothing to wait for on stop (as the picker).
        "--drain-grace-period-seconds=0".to_owned(),
        // Envoy reaches BBR over loopback in cleartext HTTP/2 (BBR serves TLS by default).
        "--secure-serving=false".to_owned(),
    ]
}

/// BBR's standalone mapping file: one `- baseModel: …\n  adapters: [...]` entry per base
/// model. Every base model is listed, adapters or not: BBR sets the base-model header only
/// for names a mapping knows, and HTTPRoutes (upstream's multi-pool routes, the quickstart)
/// match on it. Pools serving the same model share one entry.
fn base_model_file(pools: &[PoolEndpoints]) -> String {
    let mut adapters_of: Vec<(&str, Vec<&str>)> = Vec::new();
    for pool in pools {
        let position = adapters_of.iter().position(|(base, _)| *base == pool.model);
        let index = position.unwrap_or_else(|| {
            adapters_of.push((pool.model.as_str(), Vec::new()));
            adapters_of.len() - 1
        });
        if let Some((_, adapters)) = adapters_of.get_mut(index) {
            for adapter in &pool.adapters {
                if !adapters.contains(&adapter.as_str()) {
                    adapters.push(adapter);
                }
            }
        }
    }
    // JSON strings are valid YAML scalars and escape anything a name may hold.
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut text = String::new();
    for (base, adapters) in adapters_of {
        let adapters: Vec<String> = adapters.into_iter().map(quote).collect();
        text.push_str(&format!(
            "- baseModel: {}\n  adapters: [{}]\n",
            quote(base),
            adapters.join(", ")
        ));
    }
    text
}
