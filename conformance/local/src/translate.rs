//! Gateway API HTTPRoutes and InferencePools → the Envoy configuration of a gateway on one
//! machine, from the same manifests a cluster would take.
//!
//! The translation is pure: [`Manifests`] (parsed and checked YAML) plus [`GatewayWiring`]
//! (where BBR, each pool's endpoint picker and its model servers listen; the local endpoints
//! file decides that, see [`crate::endpoints`]) give a [`GatewayConfig`]. Only [`ConfigDir`]
//! writes files.
//!
//! What Envoy gets:
//! - one listener (`127.0.0.1:8080` by default) whose HTTP filters are: a header mutation
//!   that drops any client-sent `x-gateway-destination-endpoint` (only pickers may choose a
//!   host), BBR's ext_proc (it copies the body's `model` into a header and clears the route
//!   cache), the endpoint pickers' ext_proc, two filters that report the served endpoint, the
//!   router;
//! - the served endpoint (endpoint picker protocol, "Destination Endpoint Served"): every
//!   upstream response is stamped with the address Envoy connected to, which is moved into
//!   `envoy.lb` dynamic metadata as `x-gateway-destination-endpoint-served` before the response
//!   reaches the picker filter, which forwards that namespace to the picker. ORIGINAL_DST makes
//!   no load-balancing choice, so Envoy alone would leave `envoy.lb` without it;
//! - routes from the HTTPRoute rules, in Gateway API precedence order; a rule's backendRefs
//!   become weighted clusters, one ORIGINAL_DST cluster per InferencePool that sends each
//!   request where the pool's picker said in `x-gateway-destination-endpoint`;
//! - the picker filter is enabled in the connection manager and pointed at each pool's picker
//!   per weighted-cluster entry; routes without a pool switch it off. It must not be the
//!   other way round ("disabled" in the connection manager, enabled per route): Envoy decides
//!   which filters run from the route matched *before* BBR re-routes (the chaining trap,
//!   docs/upstream.md#envoy-ext_proc-semantics), so the picker would never run;
//! - `failureMode: FailClose`: the picker being down answers 500. `FailOpen`: Envoy cannot
//!   fail open once it streamed a body chunk to a FULL_DUPLEX picker, so the picker's cluster is
//!   health-checked every second and ejected on the first refused connection (outlier
//!   detection, panic mode off); a picker marked down fails the stream at once, before any
//!   body, and Envoy continues. Each match of such a pool gets a second route, without the
//!   destination header, to a round-robin cluster of the pool's endpoints. A picker that
//!   answers clears the route cache, and the first route (destination header present) takes
//!   the request to the picked endpoint. The one request that finds a picker newly dead gets
//!   500;
//! - backendRefs that name a missing pool (or a Service: there is no cluster here) get 500
//!   for their share of the traffic, as Gateway API asks, and a [`Warning`]; a rule with no
//!   usable backend answers 500 itself; requests no rule matches get 404.
//!
//! Routes and clusters are files Envoy watches (`lds.json`, `cds.json`, `rds.json`, written
//! by rename): rewriting them changes routing within a second, without a restart.

mod envoy;
mod manifests;
mod routes;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

pub use manifests::Manifests;
pub use routes::{
    Backend, HeaderCondition, PathMatch, PlannedRoute, RouteAction, RouteMatch, WeightedBackend,
};
pub use writer::ConfigDir;

use crate::error::{Error, Result};

/// The namespace of documents that name none (as `kubectl apply` would use).
pub const DEFAULT_NAMESPACE: &str = "default";
/// The listener's name in Envoy's admin API.
pub const LISTENER_NAME: &str = "inference_gateway";
/// The route configuration's name (RDS).
pub const ROUTE_CONFIG_NAME: &str = "inference_routes";
/// The endpoint picker filter's name; per-route configuration is keyed by it.
pub const PICKER_FILTER: &str = "envoy.filters.http.ext_proc.epp";
/// The filter that drops a client-sent `x-gateway-destination-endpoint`.
pub const STRIP_DESTINATION_FILTER: &str = "envoy.filters.http.header_mutation.strip_destination";
/// BBR's filter name.
pub const BBR_FILTER: &str = "envoy.filters.http.ext_proc.bbr";
/// The filter that stamps each upstream response with the address Envoy connected to.
pub const SERVED_HEADER_FILTER: &str = "envoy.filters.http.header_mutation.served_endpoint";
/// The filter that moves that stamp into `envoy.lb` dynamic metadata, where the picker filter
/// reads it on the response path (`x-gateway-destination-endpoint-served`).
pub const SERVED_METADATA_FILTER: &str = "envoy.filters.http.header_to_metadata.served_endpoint";
/// The gRPC cluster of the picker filter when no pool's picker applies. It has no endpoints,
/// so a request that reaches the filter without a pool (a backendRef naming a missing pool)
/// fails closed with 500, which is what Gateway API asks for such a backend.
pub const NO_PICKER_CLUSTER: &str = "no_endpoint_picker";
/// BBR's gRPC cluster.
pub const BBR_CLUSTER: &str = "bbr";

/// An InferencePool's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolKey {
    /// The pool's namespace.
    pub namespace: String,
    /// The pool's name.
    pub name: String,
}

// === impl PoolKey ===

impl PoolKey {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The ORIGINAL_DST cluster the pool's picker steers.
    pub fn cluster_name(&self) -> String {
        // `_` cannot occur in Kubernetes names, so these names never collide.
        format!("pool_{}_{}", self.namespace, self.name)
    }

    /// The round-robin cluster of the pool's endpoints that `FailOpen` falls back to.
    pub fn fallback_cluster_name(&self) -> String {
        format!("pool_{}_{}_fallback", self.namespace, self.name)
    }

    /// The gRPC cluster of the pool's picker.
    pub fn picker_cluster_name(&self) -> String {
        format!("epp_{}_{}", self.namespace, self.name)
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Something that translates but may not do what the author meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The object, e.g. `HTTPRoute default/llm-route`.
    pub object: String,
    /// What happens and how to change it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// How Envoy checks that a `FailOpen` pool's picker is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickerHealth {
    /// A TCP connect to the picker's gRPC port.
    Tcp,
    /// `grpc.health.v1` on `port` of the picker's host, service
    /// `envoy.service.ext_proc.v3.ExternalProcessor` (SERVING once the picker has synced).
    Grpc {
        /// The picker's health port.
        port: u16,
    },
}

/// Where one pool's processes listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolWiring {
    /// The pool's endpoint picker (gRPC ext_proc).
    pub picker: SocketAddr,
    /// How `FailOpen` pools health-check the picker.
    pub picker_health: PickerHealth,
    /// The pool's model-server endpoints, for the `FailOpen` fallback.
    pub endpoints: Vec<SocketAddr>,
}

/// Where the gateway listens and where the processes behind it are.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayWiring {
    /// The HTTP listener (port 0: any free port, read back from the admin API).
    pub listener: SocketAddr,
    /// Envoy's admin API.
    pub admin: SocketAddr,
    /// BBR's gRPC address; `None` runs without BBR (clients then set the model header).
    pub bbr: Option<SocketAddr>,
    /// Every InferencePool's processes.
    pub pools: BTreeMap<PoolKey, PoolWiring>,
    /// How long a request may take end to end (SSE streams included).
    pub route_timeout: Duration,
    /// How long Envoy waits for each picker message. The picker holds its answer while a
    /// request waits in its queue, so this bounds queueing time too.
    pub picker_message_timeout: Duration,
    /// How long Envoy waits for each BBR message.
    pub bbr_message_timeout: Duration,
    /// Envoy's per-connection buffer: a BUFFERED body (BBR's) above it is answered 413 by
    /// Envoy itself, before BBR sees it.
    pub buffer_limit_bytes: u64,
}

impl Default for GatewayWiring {
    fn default() -> Self {
        Self {
            listener: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: SocketAddr::from(([127, 0, 0, 1], 19000)),
            bbr: None,
            pools: BTreeMap::new(),
            // Long generations stream for minutes; Envoy's 15 s default would cut them.
            route_timeout: Duration::from_secs(300),
            picker_message_timeout: Duration::from_secs(300),
            // BBR answers from the body alone; 5 s leaves room for a loaded 2-core machine.
            bbr_message_timeout: Duration::from_secs(5),
            // Envoy's 1 MiB default is small for long prompts.
            buffer_limit_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The translated gateway: Envoy resources plus what the author should know.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    routes: Vec<PlannedRoute>,
    clusters: Vec<Value>,
    route_config: Value,
    wiring: GatewayWiring,
    warnings: Vec<Warning>,
}

// === impl GatewayConfig ===

impl GatewayConfig {
    /// The routes in the order Envoy tries them.
    pub fn routes(&self) -> &[PlannedRoute] {
        &self.routes
    }

    /// Problems that did not stop the translation.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The listener resource, reading routes from `dir`.
    pub fn listener(&self, dir: &Path) -> Value {
        envoy::listener(&self.wiring, dir)
    }

    /// The cluster resources.
    pub fn clusters(&self) -> &[Value] {
        &self.clusters
    }

    /// The route configuration resource.
    pub fn route_config(&self) -> &Value {
        &self.route_config
    }

    /// The cluster named `name`, if any.
    pub fn cluster(&self, name: &str) -> Option<&Value> {
        self.clusters.iter().find(|c| c["name"] == name)
    }

    /// The static bootstrap: admin API plus LDS and CDS read from `dir` (absolute).
    pub fn bootstrap(&self, dir: &Path) -> Value {
        envoy::bootstrap(self.wiring.admin, dir)
    }

    /// The file Envoy reads listeners from: a discovery response with one listener whose
    /// routes come from `dir`.
    pub fn lds(&self, dir: &Path) -> Value {
        envoy::discovery_response(&[self.listener(dir)])
    }

    /// The file Envoy reads clusters from.
    pub fn cds(&self) -> Value {
        envoy::discovery_response(&self.clusters)
    }

    /// The file Envoy reads the route configuration from.
    pub fn rds(&self) -> Value {
        envoy::discovery_response(std::slice::from_ref(&self.route_config))
    }
}

/// Translates `manifests` into Envoy resources wired as `wiring` says.
///
/// Fails when a rule uses something the local gateway cannot honour (filters, query
/// parameter matches, an unknown match type) or a pool has no wiring; every problem is
/// listed with what to change.
pub fn translate(manifests: &Manifests, wiring: &GatewayWiring) -> Result<GatewayConfig> {
    let mut problems = Vec::new();
    for pool in manifests.pool_keys() {
        if !wiring.pools.contains_key(&pool) {
            problems.push(format!(
                "InferencePool {pool} has no processes: add it to the local endpoints file"
            ));
        }
    }
    let planned = routes::plan(manifests, &mut problems);
    if !problems.is_empty() {
        return Err(Error::Manifests { problems });
    }
    let (routes, mut warnings) = planned;
    warnings.extend(dangling_pool_refs(manifests));
    Ok(GatewayConfig {
        clusters: envoy::clusters(manifests, wiring),
        route_config: envoy::route_config(&routes, wiring),
        routes,
        wiring: wiring.clone(),
        warnings,
    })
}

/// Objectives and rewrites whose `poolRef` names no pool: no picker will ever apply them.
fn dangling_pool_refs(manifests: &Manifests) -> Vec<Warning> {
    let pools = manifests.pool_keys();
    let objectives = manifests.objectives.iter().map(|o| {
        let key = PoolKey::new(manifests::namespace_of(o), o.spec.pool_ref.name.as_str());
        ("InferenceObjective", o.metadata.name.as_deref(), key)
    });
    let rewrites = manifests.rewrites.iter().map(|r| {
        let key = PoolKey::new(manifests::namespace_of(r), r.spec.pool_ref.name.as_str());
        ("InferenceModelRewrite", r.metadata.name.as_deref(), key)
    });
    objectives
        .chain(rewrites)
        .filter(|(_, _, key)| !pools.contains(key))
        .map(|(kind, name, key)| Warning {
            object: format!("{kind} {}/{}", key.namespace, name.unwrap_or("<unnamed>")),
            message: format!(
                "spec.poolRef names InferencePool {key}, which does not exist, so no endpoint \
                 picker applies it: fix the name or add the pool"
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests;
