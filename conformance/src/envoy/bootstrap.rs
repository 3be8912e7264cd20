//! An Envoy v3 static bootstrap built in Rust and rendered as JSON (which Envoy reads like
//! YAML).
//!
//! The shape follows `envoy-bbr-epp.example.yaml` in the reference: one HTTP listener, a chain
//! of ext_proc filters before the router, routes that match on a request header (the header an
//! ext_proc server sets before clearing the route cache), one static cluster per route and a
//! 404 fallback. Every ext_proc filter gets its own cluster with HTTP/2 enabled: gRPC needs it
//! and `envoy --mode validate` does not catch its absence (the runtime then fails every request
//! with a protocol error).
//!
//! For the Endpoint Picker: [`ExtProc::endpoint_picker`] sets GIE's processing mode,
//! [`Route::to_pool`] sends a route to an `ORIGINAL_DST` cluster that connects to whatever
//! `x-gateway-destination-endpoint` names, [`Route::ext_proc_cluster`] points a filter at a
//! per-pool server (each pool has its own EPP) and [`Bootstrap::header_to_metadata`] lets a
//! test put a subset hint into the request's dynamic metadata.

mod ext_proc;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

pub use ext_proc::{BodyMode, ExtProc, grpc_cluster};

/// The listener's name; the harness finds its bound port under this name in the admin API.
pub const LISTENER_NAME: &str = "gateway";
/// Header the route table matches on unless a route says otherwise; BBR sets it in production.
pub const MODEL_HEADER: &str = "x-gateway-inference-model";
/// Body of the fallback answer when no route matches.
pub const NO_ROUTE_BODY: &str = "no route\n";
/// Buffer limit per connection. BUFFERED ext_proc bodies above it are rejected with 413;
/// Envoy's 1 MiB default is small for chat prompts, and the reference bootstrap uses 4 MiB.
const BUFFER_LIMIT_BYTES: u64 = 4 * 1024 * 1024;

/// The header an `ORIGINAL_DST` pool cluster reads its destination from (set by the EPP).
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";

/// Where a route's requests go.
#[derive(Debug, Clone)]
enum Target {
    /// A static cluster of these backends.
    Static(Vec<SocketAddr>),
    /// An `ORIGINAL_DST` cluster honouring [`DESTINATION_HEADER`], like an InferencePool.
    Pool,
}

/// A route's setting for one ext_proc filter.
#[derive(Debug, Clone)]
enum PerFilter {
    /// The filter is skipped on this route.
    Disabled,
    /// The filter calls this gRPC cluster on this route.
    Cluster(String),
}

/// A route chosen by an exact header match, to a static cluster or an InferencePool-like
/// `ORIGINAL_DST` cluster.
#[derive(Debug, Clone)]
pub struct Route {
    name: String,
    header: String,
    value: String,
    target: Target,
    per_filter: Vec<(String, PerFilter)>,
}

// === impl Route ===

impl Route {
    /// Requests whose `header` equals `value` go to `backends` (cluster `route_<name>`).
    pub fn on_header(
        name: impl Into<String>,
        header: impl Into<String>,
        value: impl Into<String>,
        backends: &[SocketAddr],
    ) -> Self {
        Self {
            name: name.into(),
            header: header.into(),
            value: value.into(),
            target: Target::Static(backends.to_vec()),
            per_filter: Vec::new(),
        }
    }

    /// Requests whose `header` equals `value` go to the endpoint named by
    /// `x-gateway-destination-endpoint` (an `ORIGINAL_DST` cluster `route_<name>`, as
    /// Gateways implement an InferencePool backend).
    pub fn to_pool(
        name: impl Into<String>,
        header: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self {
            target: Target::Pool,
            ..Self::on_header(name, header, value, &[])
        }
    }

    /// On this route, the ext_proc filter `filter` (its [`ExtProc::filter_name`]) calls the
    /// gRPC cluster `cluster` instead of its own (e.g. this pool's EPP).
    #[must_use]
    pub fn ext_proc_cluster(
        mut self,
        filter: impl Into<String>,
        cluster: impl Into<String>,
    ) -> Self {
        self.per_filter
            .push((filter.into(), PerFilter::Cluster(cluster.into())));
        self
    }

    /// On this route, the ext_proc filter `filter` is skipped.
    #[must_use]
    pub fn ext_proc_disabled(mut self, filter: impl Into<String>) -> Self {
        self.per_filter.push((filter.into(), PerFilter::Disabled));
        self
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> String {
        format!("route_{}", self.name)
    }

    fn route(&self) -> Value {
        let mut route = json!({
            "name": self.name,
            "match": {
                "prefix": "/",
                "headers": [{ "name": self.header, "string_match": { "exact": self.value } }],
            },
            "route": { "cluster": self.cluster_name(), "timeout": "300s" },
        });
        if !self.per_filter.is_empty() {
            // Per-route settings are read when the filter runs, i.e. after an earlier filter
            // (BBR) re-routed the request, unlike HCM-level `disabled`.
            let configs: serde_json::Map<String, Value> = self
                .per_filter
                .iter()
                .map(|(filter, setting)| {
                    let mut config = json!({
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
                    });
                    match setting {
                        PerFilter::Disabled => config["disabled"] = json!(true),
                        PerFilter::Cluster(cluster) => {
                            config["overrides"] = json!({
                                "grpc_service": { "envoy_grpc": { "cluster_name": cluster }, "timeout": "10s" },
                            });
                        }
                    }
                    (filter.clone(), config)
                })
                .collect();
            route["typed_per_filter_config"] = Value::Object(configs);
        }
        route
    }

    fn cluster(&self) -> Value {
        let name = self.cluster_name();
        match &self.target {
            Target::Static(backends) => static_cluster(&name, backends),
            Target::Pool => json!({
                "name": name,
                "type": "ORIGINAL_DST",
                "lb_policy": "CLUSTER_PROVIDED",
                "connect_timeout": "2s",
                "original_dst_lb_config": {
                    "use_http_header": true,
                    "http_header_name": DESTINATION_HEADER,
                },
            }),
        }
    }
}

/// Copies a request header into dynamic metadata (Envoy's header-to-metadata filter), e.g. a
/// test's subset hint into `envoy.lb.subset_hint`. The header is removed.
#[derive(Debug, Clone)]
struct HeaderToMetadata {
    header: String,
    namespace: String,
    key: String,
}

impl HeaderToMetadata {
    fn filter(&self) -> Value {
        json!({
            "name": format!("envoy.filters.http.header_to_metadata.{}", self.key),
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
                "request_rules": [{
                    "header": self.header,
                    "on_header_present": {
                        "metadata_namespace": self.namespace,
                        "key": self.key,
                        "type": "STRING",
                    },
                    "remove": true,
                }],
            }
        })
    }
}

/// A whole bootstrap: listener, admin, ext_proc chain, routes and their clusters.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    listener: SocketAddr,
    admin: SocketAddr,
    ext_procs: Vec<ExtProc>,
    routes: Vec<Route>,
    grpc_clusters: Vec<(String, SocketAddr, bool)>,
    header_to_metadata: Vec<HeaderToMetadata>,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Bootstrap ===

impl Bootstrap {
    /// Listener and admin on `127.0.0.1:0` (the harness reads the real ports back), no
    /// filters, no routes: every request gets the 404 fallback.
    pub fn new() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            listener: any,
            admin: any,
            ext_procs: Vec::new(),
            routes: Vec::new(),
            grpc_clusters: Vec::new(),
            header_to_metadata: Vec::new(),
        }
    }

    /// Where the HTTP listener binds.
    #[must_use]
    pub fn listener(mut self, addr: SocketAddr) -> Self {
        self.listener = addr;
        self
    }

    /// Where the admin API binds.
    #[must_use]
    pub fn admin(mut self, addr: SocketAddr) -> Self {
        self.admin = addr;
        self
    }

    /// Appends an ext_proc filter (filters run in the order added, before the router).
    #[must_use]
    pub fn ext_proc(mut self, ext_proc: ExtProc) -> Self {
        self.ext_procs.push(ext_proc);
        self
    }

    /// Appends a route (routes match in the order added, before the 404 fallback).
    #[must_use]
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a gRPC cluster (HTTP/2, TLS when `tls`) that routes can point an ext_proc filter
    /// at with [`Route::ext_proc_cluster`].
    #[must_use]
    pub fn grpc_cluster(mut self, name: impl Into<String>, server: SocketAddr, tls: bool) -> Self {
        self.grpc_clusters.push((name.into(), server, tls));
        self
    }

    /// Copies request header `header` into dynamic metadata `namespace`.`key` (as a string)
    /// before the ext_proc filters run, and removes the header.
    #[must_use]
    pub fn header_to_metadata(
        mut self,
        header: impl Into<String>,
        namespace: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        self.header_to_metadata.push(HeaderToMetadata {
            header: header.into(),
            namespace: namespace.into(),
            key: key.into(),
        });
        self
    }

    /// The bootstrap as a JSON value.
    pub fn to_json(&self) -> Value {
        let mut routes: Vec<Value> = self.routes.iter().map(Route::route).collect();
        routes.push(json!({
            "name": "no-route",
            "match": { "prefix": "/" },
            "direct_response": { "status": 404, "body": { "inline_string": NO_ROUTE_BODY } },
        }));
        let mut http_filters: Vec<Value> = self
            .header_to_metadata
            .iter()
            .map(HeaderToMetadata::filter)
            .chain(self.ext_procs.iter().map(ExtProc::filter))
            .collect();
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            }
        }));
        let clusters: Vec<Value> = self
            .ext_procs
            .iter()
            .map(ExtProc::cluster)
            .chain(
                self.grpc_clusters
                    .iter()
                    .map(|(name, server, tls)| grpc_cluster(name, *server, *tls)),
            )
            .chain(self.routes.iter().map(Route::cluster))
            .collect();

        json!({
            "admin": { "address": socket_address(self.admin) },
            "static_resources": {
                "listeners": [{
                    "name": LISTENER_NAME,
                    "address": socket_address(self.listener),
                    "per_connection_buffer_limit_bytes": BUFFER_LIMIT_BYTES,
                    "filter_chains": [{ "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "gateway",
                            "codec_type": "AUTO",
                            "access_log": [access_log()],
                            "route_config": {
                                "name": "routes",
                                "virtual_hosts": [{ "name": "all", "domains": ["*"], "routes": routes }],
                            },
                            "http_filters": http_filters,
                        }
                    }]}],
                }],
                "clusters": clusters,
            }
        })
    }

    /// The bootstrap as pretty-printed JSON, ready for `envoy -c`.
    pub fn render(&self) -> String {
        // Serializing a `Value` cannot fail: its map keys are always strings.
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }
}

/// One line per request in Envoy's log, so a failed test's log tail shows each request's
/// route, model header, status and why Envoy answered as it did.
fn access_log() -> Value {
    json!({
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": { "text_format_source": { "inline_string": concat!(
                "[access] %REQ(:METHOD)% %REQ(:PATH)% model=%REQ(X-GATEWAY-INFERENCE-MODEL)% ",
                "dst=%REQ(X-GATEWAY-DESTINATION-ENDPOINT)% ",
                "route=%ROUTE_NAME% -> %RESPONSE_CODE% %RESPONSE_FLAGS% ",
                "%RESPONSE_CODE_DETAILS% upstream=%UPSTREAM_HOST%\n"
            ) } },
        }
    })
}

pub(crate) fn static_cluster(name: &str, endpoints: &[SocketAddr]) -> Value {
    let lb_endpoints: Vec<Value> = endpoints
        .iter()
        .map(|addr| json!({ "endpoint": { "address": socket_address(*addr) } }))
        .collect();
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": lb_endpoints }] },
    })
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

/// A protobuf JSON duration such as `"5s"` or `"0.250s"`.
pub(crate) fn duration(d: Duration) -> String {
    match d.subsec_millis() {
        0 => format!("{}s", d.as_secs()),
        ms => format!("{}.{ms:03}s", d.as_secs()),
    }
}

#[cfg(test)]
mod tests;
