#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Wiring for every pool of `manifests`, pickers from port 9000, endpoints from 8000.
fn wiring_for(manifests: &Manifests) -> GatewayWiring {
    let mut wiring = GatewayWiring {
        bbr: Some(addr(9004)),
        ..GatewayWiring::default()
    };
    for (i, key) in manifests.pool_keys().into_iter().enumerate() {
        let i = u16::try_from(i).unwrap();
        wiring.pools.insert(
            key,
            PoolWiring {
                picker: addr(9100 + i),
                picker_health: PickerHealth::Tcp,
                endpoints: vec![addr(8000 + 10 * i), addr(8001 + 10 * i)],
            },
        );
    }
    wiring
}

fn translate_yaml(yaml: &str) -> Result<GatewayConfig> {
    let manifests = Manifests::parse("test.yaml", yaml)?;
    translate(&manifests, &wiring_for(&manifests))
}

fn pool(name: &str, failure_mode: &str) -> String {
    format!(
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: {name}\n\
         spec:\n  targetPorts: [{{number: 8000}}]\n  selector:\n    matchLabels: {{app: {name}}}\n\
         \x20 endpointPickerRef:\n    name: {name}-epp\n    port: {{number: 9002}}\n    failureMode: {failure_mode}\n---\n"
    )
}

fn route(rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  rules:\n{rules}---\n"
    )
}

fn pool_ref(name: &str, weight: u32) -> String {
    format!(
        "    - {{group: inference.networking.k8s.io, kind: InferencePool, name: {name}, weight: {weight}}}\n"
    )
}

fn rule_on_model(model: &str, backends: &str) -> String {
    format!(
        "  - matches:\n    - headers: [{{name: X-Gateway-Model-Name, value: {model}}}]\n    backendRefs:\n{backends}"
    )
}

fn envoy_routes(config: &GatewayConfig) -> Vec<Value> {
    config.route_config()["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap()
        .clone()
}

fn quickstart() -> GatewayConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let manifests = Manifests::load(&dir).unwrap();
    translate(&manifests, &wiring_for(&manifests)).unwrap()
}

#[test]
fn quickstart_routes_each_rule_to_its_pools_through_their_pickers() {
    let config = quickstart();
    assert_eq!(config.warnings(), &[]);
    let names: Vec<&str> = config.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "default/llm-route/llama/match0",
            "default/llm-route/llama/match1",
            "default/llm-route/qwen/match0",
            "default/llm-route/qwen/match0/picker-down",
            "no-matching-rule",
        ]
    );
    let routes = envoy_routes(&config);
    // Llama: FailClose, one pool, the picker overridden per weighted-cluster entry.
    assert_eq!(
        routes[0]["match"]["headers"],
        json!([{"name": "x-gateway-base-model-name",
                "string_match": {"exact": "meta-llama/Llama-3.1-8B-Instruct"}}])
    );
    let llama = &routes[0]["route"]["weighted_clusters"]["clusters"];
    assert_eq!(llama.as_array().unwrap().len(), 1);
    assert_eq!(llama[0]["name"], "pool_default_vllm-llama3-8b");
    let overrides = &llama[0]["typed_per_filter_config"][PICKER_FILTER]["overrides"];
    assert_eq!(
        overrides["grpc_service"]["envoy_grpc"]["cluster_name"],
        "epp_default_vllm-llama3-8b"
    );
    assert_eq!(overrides["failure_mode_allow"], false);
    assert_eq!(routes[0]["typed_per_filter_config"], Value::Null);
    // Qwen: FailOpen. First with the picker's answer present, weight-0 canary left out.
    let present = &routes[2]["match"]["headers"][1];
    assert_eq!(
        present,
        &json!({"name": "x-gateway-destination-endpoint", "present_match": true})
    );
    let picked = &routes[2]["route"]["weighted_clusters"]["clusters"];
    assert_eq!(picked.as_array().unwrap().len(), 1);
    assert_eq!(picked[0]["name"], "pool_default_vllm-qwen3-32b");
    assert_eq!(picked[0]["weight"], 100);
    // Then without it, to the pool's own endpoints, with the same picker failing open.
    assert_eq!(routes[3]["match"]["headers"].as_array().unwrap().len(), 1);
    let fallback = &routes[3]["route"]["weighted_clusters"]["clusters"][0];
    assert_eq!(fallback["name"], "pool_default_vllm-qwen3-32b_fallback");
    let overrides = &fallback["typed_per_filter_config"][PICKER_FILTER]["overrides"];
    assert_eq!(overrides["failure_mode_allow"], true);
    assert_eq!(
        overrides["grpc_service"]["envoy_grpc"]["cluster_name"],
        "epp_default_vllm-qwen3-32b"
    );
    // Nothing matched: 404, with the picker switched off (its default has no endpoints).
    assert_eq!(routes[4]["direct_response"]["status"], 404);
    assert_eq!(
        routes[4]["typed_per_filter_config"][PICKER_FILTER]["disabled"],
        true
    );
}

#[test]
fn listener_runs_bbr_then_the_picker_enabled_then_the_router() {
    let config = quickstart();
    let listener = config.listener(Path::new("/cfg"));
    assert_eq!(
        listener["address"]["socket_address"],
        json!({"address": "127.0.0.1", "port_value": 8080})
    );
    let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    let filters = hcm["http_filters"].as_array().unwrap();
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            STRIP_DESTINATION_FILTER,
            BBR_FILTER,
            PICKER_FILTER,
            SERVED_METADATA_FILTER,
            SERVED_HEADER_FILTER,
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(
        filters[0]["typed_config"]["mutations"]["request_mutations"],
        json!([{"remove": "x-gateway-destination-endpoint"}])
    );
    let picker = &filters[2];
    // The chaining trap: never disabled in the connection manager.
    assert_eq!(picker.get("disabled"), None);
    let mode = &picker["typed_config"]["processing_mode"];
    for key in ["request_body_mode", "response_body_mode"] {
        assert_eq!(mode[key], "FULL_DUPLEX_STREAMED");
    }
    for key in ["request_trailer_mode", "response_trailer_mode"] {
        assert_eq!(mode[key], "SEND");
    }
    assert_eq!(
        picker["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"],
        NO_PICKER_CLUSTER
    );
    for direction in ["receiving_namespaces", "forwarding_namespaces"] {
        assert_eq!(
            picker["typed_config"]["metadata_options"][direction]["untyped"],
            json!(["envoy.lb"]),
            "{direction}"
        );
    }
    // The served endpoint: stamped from the upstream address (never the model server's own
    // header), then moved into envoy.lb before the response reaches the picker.
    let stamp = &filters[4]["typed_config"]["mutations"]["response_mutations"][0]["append"];
    assert_eq!(
        stamp["header"],
        json!({"key": "x-gateway-destination-endpoint-served", "value": "%UPSTREAM_REMOTE_ADDRESS%"})
    );
    assert_eq!(stamp["append_action"], "OVERWRITE_IF_EXISTS_OR_ADD");
    let rule = &filters[3]["typed_config"]["response_rules"][0];
    assert_eq!(
        rule["on_header_present"],
        json!({"metadata_namespace": "envoy.lb", "key": "x-gateway-destination-endpoint-served", "type": "STRING"})
    );
    assert_eq!(rule["remove"], true);
    assert_eq!(
        hcm["rds"]["config_source"]["path_config_source"],
        json!({"path": "/cfg/rds.json", "watched_directory": {"path": "/cfg"}})
    );
}

#[test]
fn clusters_per_pool_follow_the_failure_mode() {
    let config = quickstart();
    let pool = config.cluster("pool_default_vllm-llama3-8b").unwrap();
    assert_eq!(pool["type"], "ORIGINAL_DST");
    assert_eq!(pool["lb_policy"], "CLUSTER_PROVIDED");
    assert_eq!(
        pool["original_dst_lb_config"],
        json!({"use_http_header": true, "http_header_name": "x-gateway-destination-endpoint"})
    );
    // FailClose: no health check, no fallback.
    let picker = config.cluster("epp_default_vllm-llama3-8b").unwrap();
    assert_eq!(picker.get("health_checks"), None);
    assert!(
        config
            .cluster("pool_default_vllm-llama3-8b_fallback")
            .is_none()
    );
    // gRPC needs HTTP/2.
    assert!(
        picker["typed_extension_protocol_options"]
            .to_string()
            .contains("http2_protocol_options")
    );
    // FailOpen: the picker is health-checked with panic mode off, and the fallback lists the
    // pool's endpoints.
    let picker = config.cluster("epp_default_vllm-qwen3-32b").unwrap();
    assert_eq!(picker["health_checks"][0]["tcp_health_check"], json!({}));
    assert_eq!(
        picker["common_lb_config"]["healthy_panic_threshold"]["value"],
        0.0
    );
    let outlier = &picker["outlier_detection"];
    assert_eq!(outlier["consecutive_local_origin_failure"], 1);
    assert_eq!(outlier["split_external_local_origin_errors"], true);
    let fallback = config
        .cluster("pool_default_vllm-qwen3-32b_fallback")
        .unwrap();
    assert_eq!(fallback["type"], "STATIC");
    let endpoints = fallback["load_assignment"]["endpoints"][0]["lb_endpoints"]
        .as_array()
        .unwrap();
    assert_eq!(endpoints.len(), 2);
    assert!(config.cluster(BBR_CLUSTER).is_some());
    let empty = config.cluster(NO_PICKER_CLUSTER).unwrap();
    assert_eq!(
        empty["load_assignment"]["endpoints"][0]["lb_endpoints"],
        json!([])
    );
}

#[test]
fn grpc_health_checks_the_pickers_health_port() {
    let yaml = pool("a", "FailOpen") + &route(&rule_on_model("a", &pool_ref("a", 1)));
    let manifests = Manifests::parse("t.yaml", &yaml).unwrap();
    let mut wiring = wiring_for(&manifests);
    for pool in wiring.pools.values_mut() {
        pool.picker_health = PickerHealth::Grpc { port: 9003 };
    }
    let config = translate(&manifests, &wiring).unwrap();
    let picker = config.cluster("epp_default_a").unwrap();
    assert_eq!(
        picker["health_checks"][0]["grpc_health_check"]["service_name"],
        "envoy.service.ext_proc.v3.ExternalProcessor"
    );
    assert_eq!(
        picker["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["health_check_config"]
            ["port_value"],
        9003
    );
}

#[test]
fn weighted_backends_become_weighted_clusters_with_one_picker_each() {
    let backends = pool_ref("a", 70) + &pool_ref("b", 30);
    let yaml =
        pool("a", "FailClose") + &pool("b", "FailClose") + &route(&rule_on_model("m", &backends));
    let config = translate_yaml(&yaml).unwrap();
    let clusters = &envoy_routes(&config)[0]["route"]["weighted_clusters"]["clusters"];
    let summary: Vec<(String, u64, String)> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["weight"].as_u64().unwrap(),
                c["typed_per_filter_config"][PICKER_FILTER]["overrides"]["grpc_service"]
                    ["envoy_grpc"]["cluster_name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pool_default_a".to_owned(), 70, "epp_default_a".to_owned()),
            ("pool_default_b".to_owned(), 30, "epp_default_b".to_owned()),
        ]
    );
}

#[test]
fn a_pool_without_processes_is_an_error() {
    let yaml = pool("a", "FailClose") + &route(&rule_on_model("m", &pool_ref("a", 1)));
    let manifests = Manifests::parse("t.yaml", &yaml).unwrap();
    let err = translate(&manifests, &GatewayWiring::default()).unwrap_err();
    assert!(
        err.to_string().contains(
            "InferencePool default/a has no processes: add it to the local endpoints file"
        ),
        "{err}"
    );
}

#[test]
fn checker_findings_stop_the_translation() {
    let yaml = pool("a", "FailClose")
        + &route(&rule_on_model(
            "m",
            "    - {group: inference.networking.k8s.io, kind: InferencePool, name: a, weight: -1}\n",
        ));
    let err = Manifests::parse("t.yaml", &yaml).unwrap_err().to_string();
    assert!(err.contains("t.yaml:2: HTTPRoute/r"), "{err}");
    assert!(err.contains("weight"), "{err}");
    let err = Manifests::parse("t.yaml", "a: [").unwrap_err().to_string();
    assert!(err.contains("invalid YAML"), "{err}");
}

#[test]
fn other_kinds_are_skipped_and_reported() {
    let manifests =
        Manifests::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart"))
            .unwrap();
    assert_eq!(
        manifests.skipped,
        [
            "Gateway/inference-gateway",
            "InferenceRollout/qwen-canary",
            "LocalEndpoints/<unnamed>"
        ]
    );
    assert_eq!(manifests.pools.len(), 3);
    let llama = PoolKey::new("default", "vllm-llama3-8b");
    let priorities: Vec<i64> = manifests
        .objectives_of(&llama)
        .iter()
        .map(|o| o.spec.effective_priority())
        .collect();
    assert_eq!(priorities, [10, 0, -1]);
    assert_eq!(manifests.rewrites_of(&llama).len(), 1);
    assert!(
        manifests
            .objectives_of(&PoolKey::new("default", "vllm-qwen3-32b"))
            .is_empty()
    );
}

#[test]
fn config_dir_writes_every_file_by_rename() {
    let config = quickstart();
    let temp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::create(&temp.path().join("envoy")).unwrap();
    dir.write(&config).unwrap();
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("cds.json"), config.cds());
    assert_eq!(read("rds.json")["resources"][0]["name"], ROUTE_CONFIG_NAME);
    assert_eq!(read("lds.json")["resources"][0]["name"], LISTENER_NAME);
    let bootstrap = read("envoy.json");
    assert_eq!(
        bootstrap["dynamic_resources"]["cds_config"]["path_config_source"]["watched_directory"]["path"],
        dir.path().display().to_string()
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cds.json", "envoy.json", "lds.json", "rds.json"]);
}

#[test]
fn objectives_and_rewrites_naming_a_missing_pool_are_warned_about() {
    let objective = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\n\
                     metadata: {name: chat}\nspec:\n  priority: 1\n  poolRef: {name: nope}\n---\n";
    let rewrite = "apiVersion: llm-d.ai/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: rw}\n\
                   spec:\n  poolRef: {name: a}\n  rules: [{targets: [{modelRewrite: m}]}]\n---\n";
    let yaml = pool("a", "FailClose") + objective + rewrite;
    let config = translate_yaml(&yaml).unwrap();
    let warnings: Vec<String> = config.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "InferenceObjective default/chat: spec.poolRef names InferencePool default/nope, \
          which does not exist, so no endpoint picker applies it: fix the name or add the pool"
        ]
    );
}

mod routes;

#[test]
fn legacy_pools_are_read_as_v1() {
    let legacy = "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n\
                  metadata: {name: old}\nspec:\n  selector: {app: old}\n  targetPortNumber: 8000\n\
                  \x20 extensionRef: {name: old-epp, failureMode: FailOpen}\n---\n";
    let backends = "    - {group: inference.networking.x-k8s.io, kind: InferencePool, name: old}\n";
    let config =
        translate_yaml(&(legacy.to_owned() + &route(&rule_on_model("m", backends)))).unwrap();
    assert_eq!(config.warnings(), &[]);
    let names: Vec<&str> = config.routes().iter().map(|r| r.name.as_str()).collect();
    // FailOpen carried over: the pair of routes.
    assert_eq!(
        names,
        [
            "default/r/rule0/match0",
            "default/r/rule0/match0/picker-down",
            "no-matching-rule"
        ]
    );
    assert!(config.cluster("pool_default_old_fallback").is_some());
}

#[test]
fn without_bbr_there_is_no_bbr_filter_or_cluster() {
    let yaml = pool("a", "FailClose") + &route(&rule_on_model("m", &pool_ref("a", 1)));
    let manifests = Manifests::parse("t.yaml", &yaml).unwrap();
    let wiring = GatewayWiring {
        bbr: None,
        ..wiring_for(&manifests)
    };
    let config = translate(&manifests, &wiring).unwrap();
    let listener = config.listener(Path::new("/cfg"));
    let filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_array()
        .unwrap();
    assert!(
        filters.iter().all(|f| f["name"] != BBR_FILTER),
        "{filters:?}"
    );
    assert!(config.cluster(BBR_CLUSTER).is_none());
}

#[test]
fn h2c_pools_speak_http2_to_their_endpoints_and_hostnames_are_warned_about() {
    let h2c = pool("g", "FailOpen").replace(
        "  targetPorts:",
        "  appProtocol: kubernetes.io/h2c\n  targetPorts:",
    );
    let with_hosts = route(&rule_on_model("m", &pool_ref("g", 1))).replace(
        "  parentRefs:",
        "  hostnames: [llm.example.com]\n  parentRefs:",
    );
    let config = translate_yaml(&(h2c + &with_hosts)).unwrap();
    for name in ["pool_default_g", "pool_default_g_fallback"] {
        let cluster = config.cluster(name).unwrap();
        assert!(
            cluster["typed_extension_protocol_options"]
                .to_string()
                .contains("http2_protocol_options"),
            "{name}: {cluster}"
        );
    }
    assert_eq!(
        config.warnings()[0].to_string(),
        "HTTPRoute default/r: spec.hostnames is ignored: the local gateway answers every host name"
    );
}
