//! An Envoy v3 static bootstrap built in Rust and rendered as JSON (which Envoy reads like
//! YAML).
//!
//! The shape follows `envoy-bbr-epp.example.yaml` in the reference: one HTTP listener, a chain
//! of ext_proc filters before the router, routes that match on a request header (the header an
//! ext_proc server sets before clearing the route cache), one static cluster per route and a
//! 404 fallback. Every ext_proc filter gets its own cluster with HTTP/2 enabled: gRPC needs it
//! and `envoy --mode validate` does not catch its absence (the runtime then fails every request
//! with a protocol error).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

/// The listener's name; the harness finds its bound port under this name in the admin API.
pub const LISTENER_NAME: &str = "gateway";
/// Header the route table matches on unless a route says otherwise; BBR sets it in production.
pub const MODEL_HEADER: &str = "x-gateway-inference-model";
/// Body of the fallback answer when no route matches.
pub const NO_ROUTE_BODY: &str = "no route\n";
/// Buffer limit per connection. BUFFERED ext_proc bodies above it are rejected with 413;
/// Envoy's 1 MiB default is small for chat prompts, and the reference bootstrap uses 4 MiB.
const BUFFER_LIMIT_BYTES: u64 = 4 * 1024 * 1024;

/// How much of the request body an ext_proc filter sends to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Headers only.
    None,
    /// The whole body in one message, after Envoy buffered it.
    Buffered,
}

impl BodyMode {
    fn as_envoy(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Buffered => "BUFFERED",
        }
    }
}

/// One ext_proc HTTP filter and the gRPC server it talks to.
#[derive(Debug, Clone)]
pub struct ExtProc {
    name: String,
    server: SocketAddr,
    failure_mode_allow: bool,
    body: BodyMode,
    message_timeout: Duration,
}

// === impl ExtProc ===

impl ExtProc {
    /// A filter named `envoy.filters.http.ext_proc.<name>` calling `server`: fail closed,
    /// request headers and BUFFERED request body, no response processing, 5 s per message
    /// (Envoy's 200 ms default is too tight for a loaded 2-core CI machine).
    pub fn new(name: impl Into<String>, server: SocketAddr) -> Self {
        Self {
            name: name.into(),
            server,
            failure_mode_allow: false,
            body: BodyMode::Buffered,
            message_timeout: Duration::from_secs(5),
        }
    }

    /// Whether Envoy continues without the server when it fails (`true`) or answers 5xx.
    #[must_use]
    pub fn failure_mode_allow(mut self, allow: bool) -> Self {
        self.failure_mode_allow = allow;
        self
    }

    /// How the request body is sent.
    #[must_use]
    pub fn body_mode(mut self, body: BodyMode) -> Self {
        self.body = body;
        self
    }

    /// How long Envoy waits for each answer.
    #[must_use]
    pub fn message_timeout(mut self, timeout: Duration) -> Self {
        self.message_timeout = timeout;
        self
    }

    /// The HTTP filter's name.
    pub fn filter_name(&self) -> String {
        format!("envoy.filters.http.ext_proc.{}", self.name)
    }

    /// The gRPC cluster's name.
    pub fn cluster_name(&self) -> String {
        format!("ext_proc_{}", self.name)
    }

    fn filter(&self) -> Value {
        json!({
            "name": self.filter_name(),
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
                "stat_prefix": self.name,
                "grpc_service": {
                    "envoy_grpc": { "cluster_name": self.cluster_name() },
                    "timeout": duration(self.message_timeout),
                },
                "failure_mode_allow": self.failure_mode_allow,
                "processing_mode": {
                    "request_header_mode": "SEND",
                    "request_body_mode": self.body.as_envoy(),
                    "request_trailer_mode": "SKIP",
                    "response_header_mode": "SKIP",
                    "response_body_mode": "NONE",
                    "response_trailer_mode": "SKIP",
                },
                "message_timeout": duration(self.message_timeout),
            }
        })
    }

    fn cluster(&self) -> Value {
        let mut cluster = static_cluster(&self.cluster_name(), &[self.server]);
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} },
            }
        });
        cluster
    }
}

/// A route chosen by an exact header match, to a static cluster of backends.
#[derive(Debug, Clone)]
pub struct Route {
    name: String,
    header: String,
    value: String,
    backends: Vec<SocketAddr>,
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
            backends: backends.to_vec(),
        }
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> String {
        format!("route_{}", self.name)
    }

    fn route(&self) -> Value {
        json!({
            "name": self.name,
            "match": {
                "prefix": "/",
                "headers": [{ "name": self.header, "string_match": { "exact": self.value } }],
            },
            "route": { "cluster": self.cluster_name(), "timeout": "300s" },
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

    /// The bootstrap as a JSON value.
    pub fn to_json(&self) -> Value {
        let mut routes: Vec<Value> = self.routes.iter().map(Route::route).collect();
        routes.push(json!({
            "name": "no-route",
            "match": { "prefix": "/" },
            "direct_response": { "status": 404, "body": { "inline_string": NO_ROUTE_BODY } },
        }));
        let mut http_filters: Vec<Value> = self.ext_procs.iter().map(ExtProc::filter).collect();
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
                self.routes
                    .iter()
                    .map(|r| static_cluster(&r.cluster_name(), &r.backends)),
            )
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
                "route=%ROUTE_NAME% -> %RESPONSE_CODE% %RESPONSE_FLAGS% ",
                "%RESPONSE_CODE_DETAILS% upstream=%UPSTREAM_HOST%\n"
            ) } },
        }
    })
}

fn static_cluster(name: &str, endpoints: &[SocketAddr]) -> Value {
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
fn duration(d: Duration) -> String {
    match d.subsec_millis() {
        0 => format!("{}s", d.as_secs()),
        ms => format!("{}.{ms:03}s", d.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn cluster<'a>(json: &'a Value, name: &str) -> &'a Value {
        json["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    #[test]
    fn ext_proc_cluster_speaks_http2_and_filter_runs_before_router() {
        let json = Bootstrap::new()
            .ext_proc(ExtProc::new("bbr", addr(9004)))
            .to_json();
        let ext_proc = cluster(&json, "ext_proc_bbr");
        let options = &ext_proc["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert!(options["explicit_http_config"]["http2_protocol_options"].is_object());
        let endpoint = &ext_proc["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
        assert_eq!(endpoint["address"]["socket_address"]["port_value"], 9004);

        let filters = json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = filters
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "envoy.filters.http.ext_proc.bbr",
                "envoy.filters.http.router"
            ]
        );
        let config = &filters[0]["typed_config"];
        assert_eq!(config["failure_mode_allow"], false);
        assert_eq!(config["processing_mode"]["request_body_mode"], "BUFFERED");
        assert_eq!(
            config["grpc_service"]["envoy_grpc"]["cluster_name"],
            "ext_proc_bbr"
        );
        assert_eq!(config["message_timeout"], "5s");
    }

    #[test]
    fn ext_proc_options_reach_the_filter() {
        let json = Bootstrap::new()
            .ext_proc(
                ExtProc::new("x", addr(1))
                    .failure_mode_allow(true)
                    .body_mode(BodyMode::None)
                    .message_timeout(Duration::from_millis(250)),
            )
            .to_json();
        let config = &json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"][0]["typed_config"];
        assert_eq!(config["failure_mode_allow"], true);
        assert_eq!(config["processing_mode"]["request_body_mode"], "NONE");
        assert_eq!(config["message_timeout"], "0.250s");
    }

    #[test]
    fn header_routes_come_before_the_404_fallback() {
        let json = Bootstrap::new()
            .route(Route::on_header(
                "a",
                MODEL_HEADER,
                "model-a",
                &[addr(8001)],
            ))
            .route(Route::on_header(
                "b",
                MODEL_HEADER,
                "model-b",
                &[addr(8002), addr(8003)],
            ))
            .to_json();
        let routes = json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0]["match"]["headers"][0]["name"], MODEL_HEADER);
        assert_eq!(
            routes[1]["match"]["headers"][0]["string_match"]["exact"],
            "model-b"
        );
        assert_eq!(routes[1]["route"]["cluster"], "route_b");
        assert_eq!(routes[2]["direct_response"]["status"], 404);
        let b = cluster(&json, "route_b");
        assert_eq!(
            b["load_assignment"]["endpoints"][0]["lb_endpoints"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn listener_and_admin_default_to_ephemeral_loopback_ports() {
        let json = Bootstrap::new().to_json();
        let listener = &json["static_resources"]["listeners"][0];
        assert_eq!(listener["name"], LISTENER_NAME);
        assert_eq!(
            listener["address"]["socket_address"]["address"],
            "127.0.0.1"
        );
        assert_eq!(listener["address"]["socket_address"]["port_value"], 0);
        assert_eq!(json["admin"]["address"]["socket_address"]["port_value"], 0);
        // The rendered text is what Envoy reads; it must round-trip.
        let reparsed: Value = serde_json::from_str(&Bootstrap::new().render()).unwrap();
        assert_eq!(reparsed, json);
    }
}
