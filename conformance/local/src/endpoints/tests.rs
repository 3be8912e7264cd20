#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;

use switchyard_api::FailureMode;

use super::*;
use crate::plan::{self, PlanOptions, plan};
use crate::translate::{Manifests, PickerHealth, translate};

fn quickstart_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart")
}

fn problems(text: &str) -> Vec<String> {
    match LocalEndpoints::parse("e.yaml", text).unwrap_err() {
        Error::EndpointsFile {
            source_name,
            problems,
        } => {
            assert_eq!(source_name, "e.yaml");
            problems
        }
        other => panic!("{other:?}"),
    }
}

const HEADER: &str = "apiVersion: local.switchyard.dev/v1alpha1\nkind: LocalEndpoints\n";

#[test]
fn the_quickstart_file_parses() {
    let file = LocalEndpoints::load(&quickstart_dir().join(FILE_NAME)).unwrap();
    let summary: Vec<(String, u16, &str)> = file
        .pools
        .iter()
        .map(|p| (p.key().to_string(), p.replicas, p.model.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "default/vllm-llama3-8b".to_owned(),
                3,
                "meta-llama/Llama-3.1-8B-Instruct"
            ),
            ("default/vllm-qwen3-32b".to_owned(), 2, "Qwen/Qwen3-32B"),
            (
                "default/vllm-qwen3-32b-canary".to_owned(),
                1,
                "Qwen/Qwen3-32B"
            ),
        ]
    );
    assert_eq!(file.pools[0].adapters, ["food-review-1", "food-review-2"]);
    assert_eq!(file.pools[0].engine, Engine::Vllm);
    assert_eq!(file.pools[1].profile, Profile::Large);
}

#[test]
fn every_problem_of_the_file_is_reported_with_its_fix() {
    let text = "apiVersion: v1\nkind: ConfigMap\npools:\n\
                - {name: a, replicas: 0, model: m, adapters: [m, x, x]}\n\
                - {name: a, replicas: 99, model: ''}\n";
    let found = problems(text);
    let expected = [
        "apiVersion is \"v1\": write apiVersion: local.switchyard.dev/v1alpha1",
        "kind is \"ConfigMap\": write kind: LocalEndpoints",
        "pools[0].replicas is 0: write a number from 1 to 32",
        "pools[0]: model name \"m\" appears twice",
        "pools[0]: model name \"x\" appears twice",
        "pools[1]: pool default/a is listed twice",
        "pools[1].replicas is 99",
        "pools[1].model is empty",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (problem, expected) in found.iter().zip(expected) {
        assert!(problem.starts_with(expected), "{problem:?} vs {expected:?}");
    }
    assert_eq!(problems(&format!("{HEADER}pools: []\n")).len(), 1);
}

#[test]
fn unknown_fields_and_bad_values_name_the_field_and_the_shape() {
    let misspelt = problems(&format!(
        "{HEADER}pools:\n- name: a\n  replica: 1\n  model: m\n"
    ));
    assert!(misspelt[0].contains("replica"), "{misspelt:?}");
    assert!(
        misspelt[0].contains("pools: [{name, replicas, model"),
        "{misspelt:?}"
    );
    let engine = problems(&format!(
        "{HEADER}pools:\n- {{name: a, replicas: 1, model: m, engine: tgi}}\n"
    ));
    assert!(engine[0].contains("tgi"), "{engine:?}");
    let negative = problems(&format!(
        "{HEADER}pools:\n- {{name: a, replicas: -1, model: m}}\n"
    ));
    assert_eq!(negative.len(), 1, "{negative:?}");
    let empty = problems(&format!(
        "{HEADER}pools:\n- {{name: a, replicas: 1, model: m, adapters: ['', ok]}}\n"
    ));
    assert_eq!(
        empty,
        ["pools[0]: an adapter or served model name is empty: remove it"]
    );
    for garbage in ["", "[", "- 1", "pools: 3", "\u{0}", "apiVersion: [a"] {
        assert!(
            LocalEndpoints::parse("g.yaml", garbage).is_err(),
            "{garbage:?}"
        );
    }
}

fn quickstart_plan() -> (Manifests, plan::LocalPlan) {
    let manifests = Manifests::load(&quickstart_dir()).unwrap();
    let file = LocalEndpoints::load(&quickstart_dir().join(FILE_NAME)).unwrap();
    let plan = plan(&file, &manifests, &PlanOptions::default()).unwrap();
    (manifests, plan)
}

#[test]
fn the_plan_assigns_ports_in_order_and_wires_the_gateway() {
    let (manifests, plan) = quickstart_plan();
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let llama = &plan.pools[0];
    assert_eq!(llama.failure_mode, FailureMode::FailClose);
    let pods: Vec<(&str, Vec<SocketAddr>)> = llama
        .simulators
        .iter()
        .map(|s| (s.name.as_str(), s.endpoints.clone()))
        .collect();
    assert_eq!(
        pods,
        [
            ("vllm-llama3-8b-0", vec![addr(8100)]),
            ("vllm-llama3-8b-1", vec![addr(8101)]),
            ("vllm-llama3-8b-2", vec![addr(8102)]),
        ]
    );
    // Qwen 8103-8104, canary 8105, then BBR, then the pickers.
    assert_eq!(plan.pools[2].simulators[0].endpoints, [addr(8105)]);
    assert_eq!(
        (plan.bbr.grpc, plan.bbr.health, plan.bbr.metrics),
        (addr(8106), addr(8107), addr(8108))
    );
    assert_eq!(llama.picker.grpc, addr(8109));
    assert_eq!(plan.pools[2].picker.metrics, addr(8117));
    assert_eq!(
        llama.model_names,
        [
            "meta-llama/Llama-3.1-8B-Instruct",
            "food-review-1",
            "food-review-2"
        ]
    );
    let endpoints: Vec<(String, SocketAddr, &str)> = llama
        .picker
        .endpoints
        .iter()
        .map(|e| (e.pod.clone(), e.address, e.engine))
        .collect();
    assert_eq!(
        endpoints[2],
        ("vllm-llama3-8b-2".to_owned(), addr(8102), "vllm")
    );

    let gateway = &plan.gateway;
    assert_eq!(gateway.listener, addr(8080));
    assert_eq!(gateway.admin, addr(19000));
    assert_eq!(gateway.bbr, Some(addr(8106)));
    let wiring = &gateway.pools[&llama.pool];
    assert_eq!(wiring.picker, addr(8109));
    assert_eq!(wiring.picker_health, PickerHealth::Grpc { port: 8110 });
    assert_eq!(wiring.endpoints, [addr(8100), addr(8101), addr(8102)]);
    // The plan's wiring is what the translator needs.
    let config = translate(&manifests, gateway).unwrap();
    assert!(
        config
            .cluster("epp_default_vllm-qwen3-32b-canary")
            .is_some()
    );
}

#[test]
fn simulator_and_bbr_flags() {
    let (_, plan) = quickstart_plan();
    let llama = &plan.pools[0].simulators[1];
    assert_eq!(
        llama.args.join(" "),
        "--model meta-llama/Llama-3.1-8B-Instruct --engine vllm --profile small --host \
         127.0.0.1 --port 8101 --replicas 1 --name-prefix vllm-llama3-8b-1 --lora-modules \
         food-review-1 food-review-2"
    );
    assert_eq!(llama.ready_urls, ["http://127.0.0.1:8101/health/ready"]);
    let qwen = &plan.pools[1].simulators[0];
    assert!(qwen.args.join(" ").contains("--profile large"));
    assert!(!qwen.args.contains(&"--lora-modules".to_owned()));
    assert_eq!(
        plan.bbr.args.join(" "),
        "--bind-address 127.0.0.1 --grpc-port 8106 --grpc-health-port 8107 --metrics-port 8108 \
         --set-model-name-header --drain-grace-period-seconds=0 --secure-serving=false"
    );
    // Every base model is listed once (the two Qwen pools share it), with its adapters.
    assert_eq!(
        plan.bbr.base_model_file,
        "- baseModel: \"meta-llama/Llama-3.1-8B-Instruct\"\n  adapters: [\"food-review-1\", \
         \"food-review-2\"]\n- baseModel: \"Qwen/Qwen3-32B\"\n  adapters: []\n"
    );
}

#[test]
fn picker_files_are_in_the_epp_standalone_format() {
    let (_, plan) = quickstart_plan();
    let llama: serde_json::Value =
        serde_saphyr::from_str(&plan.pools[0].picker.endpoints_file).unwrap();
    assert_eq!(
        llama,
        serde_json::json!({
            "poolName": "vllm-llama3-8b",
            "endpoints": [
                {"name": "vllm-llama3-8b-0", "address": "127.0.0.1:8100",
                 "labels": {"inference.networking.k8s.io/engine-type": "vllm"}},
                {"name": "vllm-llama3-8b-1", "address": "127.0.0.1:8101",
                 "labels": {"inference.networking.k8s.io/engine-type": "vllm"}},
                {"name": "vllm-llama3-8b-2", "address": "127.0.0.1:8102",
                 "labels": {"inference.networking.k8s.io/engine-type": "vllm"}},
            ],
            "objectives": [
                {"name": "interactive-chat", "priority": 10},
                {"name": "batch", "priority": 0},
                {"name": "best-effort", "priority": -1},
            ],
            "rewrites": [{
                "name": "food-review",
                "rules": [{
                    "matches": [{"model": {"type": "Exact", "value": "food-review"}}],
                    "targets": [
                        {"modelRewrite": "food-review-1", "weight": 90},
                        {"modelRewrite": "food-review-2", "weight": 10},
                    ],
                }],
            }],
        })
    );
    let canary: serde_json::Value =
        serde_saphyr::from_str(&plan.pools[2].picker.endpoints_file).unwrap();
    assert_eq!(canary["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(canary["objectives"], serde_json::json!([]));
}

#[test]
fn data_parallel_pools_get_one_port_per_target_port() {
    let manifests = Manifests::parse(
        "m.yaml",
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: dp}\n\
         spec:\n  targetPorts: [{number: 8000}, {number: 8001}, {number: 8002}]\n  selector:\n\
         \x20   matchLabels: {app: dp}\n  endpointPickerRef: {name: e, port: {number: 9002}}\n",
    )
    .unwrap();
    let file = LocalEndpoints::parse("e.yaml", &format!(
        "{HEADER}pools:\n- {{name: dp, replicas: 2, model: m, simulatorArgs: [--time-scale, '0'], \
         pickerArgs: [--max-endpoints, '2']}}\n"
    ))
    .unwrap();
    let options = PlanOptions {
        first_port: 8079,
        ..PlanOptions::default()
    };
    let plan = plan(&file, &manifests, &options).unwrap();
    let pod = &plan.pools[0].simulators[0];
    let ports: Vec<u16> = pod.endpoints.iter().map(SocketAddr::port).collect();
    // 8080 is the gateway's: skipped.
    assert_eq!(ports, [8079, 8081, 8082]);
    let args = pod.args.join(" ");
    assert!(args.contains("--port 8079 --replicas 3"), "{args}");
    assert!(args.ends_with("--time-scale 0"), "{args}");
    let picker_args = plan.pools[0].picker.args.join(" ");
    assert!(
        picker_args.ends_with("--secure-serving=false --max-endpoints 2"),
        "{picker_args}"
    );
    let names: Vec<&str> = plan.pools[0]
        .picker
        .endpoints
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dp-0-rank-0",
            "dp-0-rank-1",
            "dp-0-rank-2",
            "dp-1-rank-0",
            "dp-1-rank-1",
            "dp-1-rank-2"
        ]
    );
    assert_eq!(pod.ready_urls.len(), 3);
}

#[test]
fn pools_and_entries_must_match_and_ports_must_suffice() {
    let manifests = Manifests::load(&quickstart_dir()).unwrap();
    let file = LocalEndpoints::parse(
        "e.yaml",
        &format!("{HEADER}pools:\n- {{name: vllm-llama3-8b, replicas: 1, model: m}}\n- {{name: extra, replicas: 1, model: m}}\n"),
    )
    .unwrap();
    let err = plan(&file, &manifests, &PlanOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "InferencePool default/vllm-qwen3-32b has no entry: add `- name: vllm-qwen3-32b`"
        ),
        "{err}"
    );
    assert!(
        err.contains("default/vllm-qwen3-32b-canary has no entry"),
        "{err}"
    );
    assert!(
        err.contains("pool default/extra has no InferencePool manifest"),
        "{err}"
    );

    let file = LocalEndpoints::load(&quickstart_dir().join(FILE_NAME)).unwrap();
    let options = PlanOptions {
        first_port: 65530,
        ..PlanOptions::default()
    };
    let err = plan(&file, &manifests, &options).unwrap_err().to_string();
    assert!(err.contains("not enough ports"), "{err}");
}

#[test]
fn a_stack_loads_from_a_directory_and_writes_every_file() {
    use crate::stack::{self, LocalStack};

    let stack = LocalStack::load(&quickstart_dir(), &PlanOptions::default()).unwrap();
    assert_eq!(stack.plan.pools.len(), 3);
    assert!(stack.config.warnings().is_empty());
    let temp = tempfile::tempdir().unwrap();
    let files = stack.write(temp.path()).unwrap();
    assert!(files.envoy.bootstrap_path().is_file());
    let models = std::fs::read_to_string(&files.bbr_base_models).unwrap();
    assert_eq!(models, stack.plan.bbr.base_model_file);
    let names: Vec<String> = files
        .picker_files
        .iter()
        .map(|(pool, path)| {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains(&format!("\"poolName\": \"{}\"", pool.name)));
            path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "epp-default-vllm-llama3-8b.yaml",
            "epp-default-vllm-qwen3-32b.yaml",
            "epp-default-vllm-qwen3-32b-canary.yaml"
        ]
    );

    let processes = stack.processes(&files);
    let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sim-vllm-llama3-8b-0",
            "sim-vllm-llama3-8b-1",
            "sim-vllm-llama3-8b-2",
            "sim-vllm-qwen3-32b-0",
            "sim-vllm-qwen3-32b-1",
            "sim-vllm-qwen3-32b-canary-0",
            "bbr",
            "epp-vllm-llama3-8b",
            "epp-vllm-qwen3-32b",
            "epp-vllm-qwen3-32b-canary",
        ]
    );
    let bbr = &processes[6];
    assert_eq!(bbr.program.binary_name(), "switchyard-bbr");
    assert_eq!(
        bbr.args[bbr.args.len() - 2..],
        [
            "--base-model-file".to_owned(),
            files.bbr_base_models.display().to_string()
        ]
    );
    assert_eq!(
        bbr.ready,
        stack::Readiness::GrpcHealth {
            addr: stack.plan.bbr.health,
            service: stack::BBR_HEALTH_SERVICE,
        }
    );
    let epp = &processes[9];
    assert_eq!(epp.program, stack::Program::Picker);
    assert_eq!(
        epp.args.last().unwrap(),
        &files.picker_files[2].1.display().to_string()
    );
    assert_eq!(
        epp.ready,
        stack::Readiness::GrpcHealth {
            addr: stack.plan.pools[2].picker.health,
            service: stack::PICKER_HEALTH_SERVICE,
        }
    );
    assert_eq!(
        processes[0].ready,
        stack::Readiness::Http(vec!["http://127.0.0.1:8100/health/ready".to_owned()])
    );

    // A directory without the endpoints file says what to do.
    let empty = tempfile::tempdir().unwrap();
    let err = LocalStack::load(empty.path(), &PlanOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("the file is missing"), "{err}");
    assert!(
        err.contains("copy conformance/examples/quickstart/local-endpoints.yaml"),
        "{err}"
    );
}

#[test]
fn first_port_zero_hands_out_distinct_free_ports() {
    let manifests = Manifests::load(&quickstart_dir()).unwrap();
    let file = LocalEndpoints::load(&quickstart_dir().join(FILE_NAME)).unwrap();
    let options = PlanOptions {
        first_port: 0,
        ..PlanOptions::default()
    };
    let plan = plan(&file, &manifests, &options).unwrap();
    let mut ports: Vec<u16> = plan
        .pools
        .iter()
        .flat_map(|p| p.simulators.iter().flat_map(|s| s.endpoints.iter()))
        .map(SocketAddr::port)
        .chain([plan.bbr.grpc.port(), plan.bbr.health.port()])
        .collect();
    let count = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), count, "ports repeat: {ports:?}");
    // Not the consecutive range a non-zero first port gives.
    assert!(!ports.contains(&0) && !ports.contains(&8100), "{ports:?}");
}
