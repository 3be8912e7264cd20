//! The route table and the wiring → Envoy v3 resources as JSON (Envoy reads JSON files like
//! YAML). Shapes follow the validated reference bootstrap (`envoy-bbr-epp.example.yaml`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_api::AppProtocol;
use switchyard_api::protocol::{
    DESTINATION_ENDPOINT_HEADER, DESTINATION_ENDPOINT_SERVED_KEY, ENVOY_LB_METADATA_NAMESPACE,
    EXT_PROC_SERVICE_NAME, INFERENCE_MODEL_HEADER, MODEL_NAME_HEADER,
};

use super::manifests::pool_key;
use super::routes::{Backend, HeaderCondition, PathMatch, PlannedRoute, RouteAction};
use super::{
    BBR_CLUSTER, BBR_FILTER, GatewayWiring, LISTENER_NAME, Manifests, NO_PICKER_CLUSTER,
    PICKER_FILTER, PickerHealth, PoolKey, ROUTE_CONFIG_NAME, SERVED_HEADER_FILTER,
    SERVED_METADATA_FILTER, STRIP_DESTINATION_FILTER,
};

const EXT_PROC_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";
const EXT_PROC_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute";
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// File names in the configuration directory.
pub(super) const LDS_FILE: &str = "lds.json";
pub(super) const CDS_FILE: &str = "cds.json";
pub(super) const RDS_FILE: &str = "rds.json";
/// How often a `FailOpen` pool's picker is health-checked: the longest a dead picker fails
/// requests before the fallback takes over.
const PICKER_HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// Envoy's duration syntax.
fn duration(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

fn socket(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

/// `{"resources": [...]}`, the shape of a file-based xDS subscription.
pub(super) fn discovery_response(resources: &[Value]) -> Value {
    json!({ "resources": resources })
}

/// Admin API plus listeners and clusters read from files in `dir`, re-read whenever a file is
/// moved into `dir`.
pub(super) fn bootstrap(admin: SocketAddr, dir: &Path) -> Value {
    let source = |file: &str| {
        json!({
            "path_config_source": {
                "path": dir.join(file).display().to_string(),
                "watched_directory": { "path": dir.display().to_string() },
            },
            "resource_api_version": "V3",
        })
    };
    json!({
        "node": { "id": "switchyard-local", "cluster": "switchyard-local" },
        "admin": { "address": socket(admin) },
        "dynamic_resources": {
            "lds_config": source(LDS_FILE),
            "cds_config": source(CDS_FILE),
        },
    })
}

/// The HTTP listener: BBR, the picker filter, the served-endpoint report, the router; routes
/// from `rds.json`.
pub(super) fn listener(wiring: &GatewayWiring, dir: &Path) -> Value {
    let mut filters = vec![strip_destination_filter()];
    if wiring.bbr.is_some() {
        filters.push(bbr_filter(wiring.bbr_message_timeout));
    }
    filters.push(picker_filter(wiring.picker_message_timeout));
    // Responses pass the filters in reverse: the stamp is set first, then becomes metadata,
    // and only then reaches the picker.
    filters.push(served_metadata_filter());
    filters.push(served_header_filter());
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "suppress_envoy_headers": true,
        }
    }));
    let access_log_format = format!(
        "[%START_TIME%] %REQ(:METHOD)% %REQ(:PATH)% model=%REQ({INFERENCE_MODEL_HEADER})% \
         model_name=%REQ({MODEL_NAME_HEADER})% dst=%REQ({DESTINATION_ENDPOINT_HEADER})% \
         route=%ROUTE_NAME% cluster=%UPSTREAM_CLUSTER% -> %RESPONSE_CODE% %RESPONSE_FLAGS% \
         %RESPONSE_CODE_DETAILS% upstream=%UPSTREAM_HOST% %DURATION%ms\n"
    );
    json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": LISTENER_NAME,
        "address": socket(wiring.listener),
        "per_connection_buffer_limit_bytes": wiring.buffer_limit_bytes,
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "inference_gateway",
                    "codec_type": "AUTO",
                    "access_log": [{
                        "name": "envoy.access_loggers.stdout",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                            "log_format": { "text_format_source": { "inline_string": access_log_format } },
                        }
                    }],
                    "rds": {
                        "route_config_name": ROUTE_CONFIG_NAME,
                        "config_source": {
                            "path_config_source": {
                                "path": dir.join(RDS_FILE).display().to_string(),
                                "watched_directory": { "path": dir.display().to_string() },
                            },
                            "resource_api_version": "V3",
                        },
                    },
                    "http_filters": filters,
                }
            }]
        }]
    })
}

/// Removes a client-sent `x-gateway-destination-endpoint` before anything else runs. Only
/// pickers may set it: the ORIGINAL_DST clusters connect wherever it points, so a request that
/// reaches them without a picker's answer (a `FailOpen` pool whose picker is down) must not
/// choose its own host.
fn strip_destination_filter() -> Value {
    json!({
        "name": STRIP_DESTINATION_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": { "request_mutations": [{ "remove": DESTINATION_ENDPOINT_HEADER }] },
        }
    })
}

/// Stamps every upstream response with the address Envoy connected to, overwriting anything
/// the model server sent under that name. This is the served endpoint of the endpoint picker
/// protocol: ORIGINAL_DST makes no load-balancing choice, so Envoy itself writes nothing to
/// `envoy.lb`. A response without an upstream (a local reply) formats to nothing and gets no
/// stamp.
fn served_header_filter() -> Value {
    json!({
        "name": SERVED_HEADER_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": { "response_mutations": [{ "append": {
                "header": { "key": DESTINATION_ENDPOINT_SERVED_KEY, "value": "%UPSTREAM_REMOTE_ADDRESS%" },
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                "keep_empty_value": false,
            } }] },
        }
    })
}

/// Moves the stamp into `envoy.lb` dynamic metadata and removes it, so the client never sees
/// it and the picker filter forwards it (`metadata_options.forwarding_namespaces`).
fn served_metadata_filter() -> Value {
    json!({
        "name": SERVED_METADATA_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
            "response_rules": [{
                "header": DESTINATION_ENDPOINT_SERVED_KEY,
                "on_header_present": {
                    "metadata_namespace": ENVOY_LB_METADATA_NAMESPACE,
                    "key": DESTINATION_ENDPOINT_SERVED_KEY,
                    "type": "STRING",
                },
                "remove": true,
            }],
        }
    })
}

/// BBR: headers and the BUFFERED body, nothing of the response; fail closed.
fn bbr_filter(message_timeout: Duration) -> Value {
    json!({
        "name": BBR_FILTER,
        "typed_config": {
            "@type": EXT_PROC_TYPE,
            "stat_prefix": "bbr",
            "grpc_service": {
                "envoy_grpc": { "cluster_name": BBR_CLUSTER },
                "timeout": duration(message_timeout),
            },
            "failure_mode_allow": false,
            "processing_mode": {
                "request_header_mode": "SEND",
                "request_body_mode": "BUFFERED",
                "request_trailer_mode": "SKIP",
                "response_header_mode": "SKIP",
                "response_body_mode": "NONE",
                "response_trailer_mode": "SKIP",
            },
            "message_timeout": duration(message_timeout),
            "mutation_rules": { "disallow_is_error": false },
        }
    })
}

/// The picker filter as the connection manager holds it: enabled, FULL_DUPLEX_STREAMED both
/// ways with trailers sent (the endpoint picker protocol), and aimed at a cluster with no
/// endpoints, so a route entry that names no pool fails closed with 500. It accepts the
/// picker's `envoy.lb` answer and sends `envoy.lb` back, which on the response carries the
/// served endpoint.
fn picker_filter(message_timeout: Duration) -> Value {
    json!({
        "name": PICKER_FILTER,
        "typed_config": {
            "@type": EXT_PROC_TYPE,
            "stat_prefix": "epp",
            "grpc_service": picker_grpc_service(NO_PICKER_CLUSTER, message_timeout),
            "failure_mode_allow": false,
            "processing_mode": {
                "request_header_mode": "SEND",
                "request_body_mode": "FULL_DUPLEX_STREAMED",
                "request_trailer_mode": "SEND",
                "response_header_mode": "SEND",
                "response_body_mode": "FULL_DUPLEX_STREAMED",
                "response_trailer_mode": "SEND",
            },
            "message_timeout": duration(message_timeout),
            "metadata_options": {
                "receiving_namespaces": { "untyped": [ENVOY_LB_METADATA_NAMESPACE] },
                "forwarding_namespaces": { "untyped": [ENVOY_LB_METADATA_NAMESPACE] },
            },
        }
    })
}

fn picker_grpc_service(cluster: &str, timeout: Duration) -> Value {
    json!({ "envoy_grpc": { "cluster_name": cluster }, "timeout": duration(timeout) })
}

/// Per-route picker configuration: this pool's picker and failure mode.
fn picker_override(pool: &PoolKey, fail_open: bool, timeout: Duration) -> Value {
    json!({
        PICKER_FILTER: {
            "@type": EXT_PROC_PER_ROUTE_TYPE,
            "overrides": {
                "grpc_service": picker_grpc_service(&pool.picker_cluster_name(), timeout),
                "failure_mode_allow": fail_open,
            }
        }
    })
}

fn picker_disabled() -> Value {
    json!({ PICKER_FILTER: { "@type": EXT_PROC_PER_ROUTE_TYPE, "disabled": true } })
}

/// The route configuration: one virtual host answering every host name.
pub(super) fn route_config(routes: &[PlannedRoute], wiring: &GatewayWiring) -> Value {
    let routes: Vec<Value> = routes.iter().map(|r| route(r, wiring)).collect();
    json!({
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": ROUTE_CONFIG_NAME,
        "virtual_hosts": [{ "name": "inference", "domains": ["*"], "routes": routes }],
    })
}

fn route(planned: &PlannedRoute, wiring: &GatewayWiring) -> Value {
    let matches = &planned.matches;
    let mut route_match = match &matches.path {
        PathMatch::Exact(path) => json!({ "path": path }),
        PathMatch::Prefix(prefix) if prefix == "/" => json!({ "prefix": "/" }),
        PathMatch::Prefix(prefix) => json!({ "path_separated_prefix": prefix }),
        PathMatch::Regex(regex) => json!({ "safe_regex": { "regex": regex } }),
    };
    let mut headers: Vec<Value> = matches.headers.iter().map(header_matcher).collect();
    if let Some(method) = &matches.method {
        headers.push(json!({ "name": ":method", "string_match": { "exact": method } }));
    }
    if matches.destination_present {
        headers.push(json!({ "name": DESTINATION_ENDPOINT_HEADER, "present_match": true }));
    }
    if !headers.is_empty() {
        route_match["headers"] = Value::Array(headers);
    }
    match &planned.action {
        RouteAction::Respond { status, body } => json!({
            "name": planned.name,
            "match": route_match,
            "direct_response": { "status": status, "body": { "inline_string": body } },
            "typed_per_filter_config": picker_disabled(),
        }),
        RouteAction::Forward(backends) => {
            let clusters: Vec<Value> = backends
                .iter()
                .map(|weighted| {
                    let mut entry = json!({ "weight": weighted.weight });
                    match &weighted.backend {
                        Backend::Pool { pool, fail_open } => {
                            entry["name"] = json!(pool.cluster_name());
                            entry["typed_per_filter_config"] =
                                picker_override(pool, *fail_open, wiring.picker_message_timeout);
                        }
                        Backend::Fallback(pool) => {
                            entry["name"] = json!(pool.fallback_cluster_name());
                            entry["typed_per_filter_config"] =
                                picker_override(pool, true, wiring.picker_message_timeout);
                        }
                        // No per-entry picker: the connection manager's, which has no
                        // endpoints, fails the request closed with 500.
                        Backend::Invalid => entry["name"] = json!(NO_PICKER_CLUSTER),
                    }
                    entry
                })
                .collect();
            json!({
                "name": planned.name,
                "match": route_match,
                "route": {
                    "weighted_clusters": { "clusters": clusters },
                    "timeout": duration(planned.timeout.unwrap_or(wiring.route_timeout)),
                },
            })
        }
    }
}

fn header_matcher(header: &HeaderCondition) -> Value {
    let string_match = if header.regex {
        json!({ "safe_regex": { "regex": header.value } })
    } else {
        json!({ "exact": header.value })
    };
    json!({ "name": header.name, "string_match": string_match })
}

/// Every cluster: BBR's, the empty picker cluster, and per pool its picker, its
/// ORIGINAL_DST cluster and, when `FailOpen`, its fallback.
pub(super) fn clusters(manifests: &Manifests, wiring: &GatewayWiring) -> Vec<Value> {
    let mut clusters = Vec::new();
    if let Some(bbr) = wiring.bbr {
        clusters.push(grpc_cluster(BBR_CLUSTER, Some(bbr)));
    }
    clusters.push(grpc_cluster(NO_PICKER_CLUSTER, None));
    for pool in &manifests.pools {
        let key = pool_key(pool);
        let Some(pool_wiring) = wiring.pools.get(&key) else {
            continue;
        };
        let fail_open = manifests.fail_open_pools().contains(&key);
        let mut picker = grpc_cluster(&key.picker_cluster_name(), Some(pool_wiring.picker));
        if fail_open {
            add_health_check(&mut picker, pool_wiring.picker_health);
        }
        clusters.push(picker);
        let h2c = pool.spec.app_protocol == AppProtocol::H2c;
        clusters.push(original_dst_cluster(&key, h2c));
        if fail_open {
            clusters.push(fallback_cluster(&key, &pool_wiring.endpoints, h2c));
        }
    }
    clusters
}

fn with_http2(cluster: &mut Value) {
    cluster["typed_extension_protocol_options"] = json!({
        HTTP_PROTOCOL_OPTIONS: {
            "@type": format!("type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}"),
            "explicit_http_config": { "http2_protocol_options": {} },
        }
    });
}

fn static_cluster(name: &str, endpoints: &[SocketAddr]) -> Value {
    let lb_endpoints: Vec<Value> = endpoints
        .iter()
        .map(|addr| json!({ "endpoint": { "address": socket(*addr) } }))
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": lb_endpoints }] },
    })
}

/// A gRPC (HTTP/2 cleartext) cluster. gRPC needs HTTP/2 and `envoy --mode validate` does not
/// catch its absence, so every ext_proc cluster goes through here.
fn grpc_cluster(name: &str, server: Option<SocketAddr>) -> Value {
    let mut cluster = static_cluster(name, server.as_slice());
    with_http2(&mut cluster);
    cluster
}

/// Health-checks a picker. Panic mode is off: by default Envoy ignores health once fewer than
/// half the hosts are healthy, and with one host it would keep streaming to a dead picker.
fn add_health_check(cluster: &mut Value, health: PickerHealth) {
    let interval = duration(PICKER_HEALTH_INTERVAL);
    let mut check = json!({
        "timeout": interval,
        "interval": interval,
        // A cluster with no traffic yet is checked every 60 s by default; a picker that has
        // not served a request must still be noticed quickly.
        "no_traffic_interval": interval,
        "unhealthy_threshold": 1,
        "healthy_threshold": 1,
    });
    match health {
        PickerHealth::Tcp => check["tcp_health_check"] = json!({}),
        PickerHealth::Grpc { port } => {
            check["grpc_health_check"] = json!({ "service_name": EXT_PROC_SERVICE_NAME });
            if let Some(endpoint) =
                cluster.pointer_mut("/load_assignment/endpoints/0/lb_endpoints/0/endpoint")
            {
                endpoint["health_check_config"] = json!({ "port_value": port });
            }
        }
    }
    cluster["health_checks"] = json!([check]);
    cluster["common_lb_config"] = json!({ "healthy_panic_threshold": { "value": 0.0 } });
    // The health check notices a dead picker within its interval; a refused connection from a
    // real request ejects the picker at once, so only the requests already sent to it fail.
    cluster["outlier_detection"] = json!({
        "split_external_local_origin_errors": true,
        "consecutive_local_origin_failure": 1,
        "enforcing_consecutive_local_origin_failure": 100,
        "consecutive_5xx": 1000000,
        "consecutive_gateway_failure": 1000000,
        "interval": interval,
        "base_ejection_time": interval,
        "max_ejection_percent": 100,
    });
}

/// The cluster a pool's picker steers: the host is whatever `x-gateway-destination-endpoint`
/// says (the first entry of its fallback list).
fn original_dst_cluster(pool: &PoolKey, h2c: bool) -> Value {
    let mut cluster = json!({
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": pool.cluster_name(),
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "2s",
        "original_dst_lb_config": {
            "use_http_header": true,
            "http_header_name": DESTINATION_ENDPOINT_HEADER,
        },
    });
    if h2c {
        with_http2(&mut cluster);
    }
    cluster
}

/// A `FailOpen` pool's endpoints, round robin, for requests its picker did not answer.
fn fallback_cluster(pool: &PoolKey, endpoints: &[SocketAddr], h2c: bool) -> Value {
    let mut cluster = static_cluster(&pool.fallback_cluster_name(), endpoints);
    cluster["connect_timeout"] = json!("2s");
    if h2c {
        with_http2(&mut cluster);
    }
    cluster
}
