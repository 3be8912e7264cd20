#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use switchyard_api::InferenceRollout;
use switchyard_api::rollout::{BackendTarget, Verdict};

use super::{
    ArmTarget, ClusterAnalysis, METRICS_PORT_ANNOTATION, arm_target, metrics_port, metrics_url,
    picker_ref,
};
use crate::controller::tests::fixtures::{Expect, context, pool, serve};
use crate::epp::tests::{page, serve_pages};

/// The picker Service as the inferencepool chart renders it.
fn chart_service(ports: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "qwen-epp", "namespace": "llm"},
        "spec": {"type": "ClusterIP", "selector": {"app": "qwen-epp"}, "ports": ports}
    }))
    .unwrap()
}

fn chart_ports() -> Value {
    json!([
        {"name": "grpc-ext-proc", "port": 9002, "targetPort": "grpc-ext-proc", "appProtocol": "http2"},
        {"name": "grpc-health", "port": 9003, "targetPort": "grpc-health", "appProtocol": "http2"},
        {"name": "http-metrics", "port": 9090, "targetPort": "http-metrics"}
    ])
}

#[test]
fn the_picker_is_the_service_the_pool_names() {
    let picker = picker_ref("llm", "qwen", &pool("qwen")).unwrap();
    assert_eq!(picker.service, "qwen-epp");
    assert_eq!(picker.metrics_port, None);

    let mut annotated = pool("qwen");
    annotated["metadata"]["annotations"] = json!({ METRICS_PORT_ANNOTATION: " 9191 " });
    let picker = picker_ref("llm", "qwen", &annotated).unwrap();
    assert_eq!(picker.metrics_port.as_deref(), Some("9191"));
}

#[test]
fn a_pool_without_a_usable_picker_ref_says_what_to_fix() {
    let mut missing = pool("qwen");
    missing["spec"]
        .as_object_mut()
        .unwrap()
        .remove("endpointPickerRef");
    let err = picker_ref("llm", "qwen", &missing).unwrap_err();
    assert!(
        err.contains("InferencePool llm/qwen has no spec.endpointPickerRef"),
        "{err}"
    );

    let mut other_kind = pool("qwen");
    other_kind["spec"]["endpointPickerRef"]["kind"] = json!("Deployment");
    other_kind["spec"]["endpointPickerRef"]["group"] = json!("apps");
    let err = picker_ref("llm", "qwen", &other_kind).unwrap_err();
    assert!(err.contains("is a Deployment"), "{err}");
    assert!(err.contains("core Service"), "{err}");

    let mut unreadable = pool("qwen");
    unreadable["spec"]["endpointPickerRef"] = json!({"port": {"number": 9002}});
    let err = picker_ref("llm", "qwen", &unreadable).unwrap_err();
    assert!(err.contains("cannot be read"), "{err}");
}

#[test]
fn the_metrics_port_is_the_chart_named_port_or_the_annotated_one() {
    assert_eq!(metrics_port(&chart_service(chart_ports()), None), Ok(9090));
    let plain = chart_service(json!([
        {"name": "grpc", "port": 9002},
        {"name": "metrics", "port": 9100}
    ]));
    assert_eq!(metrics_port(&plain, None), Ok(9100));
    // The annotation wins, by number or by name.
    assert_eq!(
        metrics_port(&chart_service(chart_ports()), Some("9003")),
        Ok(9003)
    );
    assert_eq!(metrics_port(&plain, Some("grpc")), Ok(9002));
}

#[test]
fn a_service_without_the_metrics_port_says_what_to_fix() {
    let grpc_only = chart_service(json!([{"name": "grpc-ext-proc", "port": 9002}]));
    let err = metrics_port(&grpc_only, None).unwrap_err();
    assert!(
        err.contains("Service llm/qwen-epp has no port named http-metrics or metrics"),
        "{err}"
    );
    assert!(err.contains("--metrics-port"), "{err}");
    assert!(err.contains(METRICS_PORT_ANNOTATION), "{err}");

    let err = metrics_port(&grpc_only, Some("9090")).unwrap_err();
    assert!(err.contains("has no port 9090"), "{err}");
    let err = metrics_port(&grpc_only, Some("prom")).unwrap_err();
    assert!(err.contains("no port named \"prom\""), "{err}");

    let no_spec: Service =
        serde_json::from_value(json!({"metadata": {"name": "bare", "namespace": "llm"}})).unwrap();
    assert!(metrics_port(&no_spec, None).is_err());
}

#[test]
fn the_url_is_the_services_cluster_dns_name() {
    assert_eq!(
        metrics_url("qwen-epp", "llm", 9090),
        "http://qwen-epp.llm.svc:9090/metrics"
    );
}

fn pool_backend(name: &str) -> BackendTarget {
    serde_json::from_value(json!({ "name": name })).unwrap()
}

const POOL_PATH: &str = "/apis/inference.networking.k8s.io/v1/namespaces/llm/inferencepools/qwen";
const SERVICE_PATH: &str = "/api/v1/namespaces/llm/services/qwen-epp";

fn not_found(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("{what} not found"), "reason": "NotFound", "code": 404})
}

#[tokio::test]
async fn the_arm_is_found_through_the_pool_and_its_service() {
    let (ctx, handle) = context();
    let server = serve(
        handle,
        vec![
            Expect::get(POOL_PATH, pool("qwen")),
            Expect::get(
                SERVICE_PATH,
                serde_json::to_value(chart_service(chart_ports())).unwrap(),
            ),
        ],
    );
    let arm = arm_target(&ctx.client, "llm", &pool_backend("qwen"))
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(
        arm,
        ArmTarget {
            url: "http://qwen-epp.llm.svc:9090/metrics".into(),
            pool: Some("qwen".into()),
            target_model: None,
        }
    );
}

#[tokio::test]
async fn a_missing_pool_or_service_is_named() {
    let (ctx, handle) = context();
    let server = serve(
        handle,
        vec![
            Expect::get(POOL_PATH, Value::Null).answering(404, not_found("qwen")),
            Expect::get(POOL_PATH, pool("qwen")),
            Expect::get(SERVICE_PATH, Value::Null).answering(404, not_found("qwen-epp")),
        ],
    );
    let err = arm_target(&ctx.client, "llm", &pool_backend("qwen"))
        .await
        .unwrap_err();
    assert_eq!(err, "InferencePool llm/qwen not found");
    let err = arm_target(&ctx.client, "llm", &pool_backend("qwen"))
        .await
        .unwrap_err();
    assert!(
        err.contains(
            "Service llm/qwen-epp (the endpointPickerRef of InferencePool llm/qwen) not found"
        ),
        "{err}"
    );
    server.await.unwrap();

    // A backend that is not a pool is refused without any call.
    let (ctx, handle) = context();
    let server = serve(handle, vec![]);
    let service: BackendTarget =
        serde_json::from_value(json!({"group": "", "kind": "Service", "name": "svc"})).unwrap();
    let err = arm_target(&ctx.client, "llm", &service).await.unwrap_err();
    assert!(err.contains("measures InferencePool backends"), "{err}");
    server.await.unwrap();
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// A rollout at its first step, weights applied and verified at `at(0)`,
/// judging server errors every 10 s.
fn progressing_rollout() -> InferenceRollout {
    serde_json::from_value(json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1",
        "kind": "InferenceRollout",
        "metadata": {"name": "qwen", "namespace": "llm"},
        "spec": {
            "target": {"mode": "PoolSplit", "route": {"name": "llm-route", "ruleName": "chat"},
                       "stable": {"name": "qwen"}, "canary": {"name": "qwen-next"}},
            "strategy": {"steps": [{"weight": 1000}], "settleTime": "0s", "analysisInterval": "10s"},
            "analysis": {"source": {"epp": {"scrapeInterval": "5s"}}, "minRequestsPerWindow": 10,
                         "metrics": [{"name": "5xx", "type": "ErrorRate", "statusClasses": ["5xx"], "max": 0.01}]}
        },
        "status": {
            "phase": "Progressing", "currentStep": 0,
            "weights": {"desired": {"stable": 9000, "canary": 1000},
                        "applied": {"stable": 9000, "canary": 1000, "verifiedAt": "2027-01-15T08:00:00Z"}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn windows_are_judged_on_pages_scraped_over_http() {
    let rollout = progressing_rollout();
    let status = rollout.status.clone().unwrap();
    // Each picker serves a recorded EPP page, its counters growing.
    let canary = ArmTarget {
        url: serve_pages(vec![(200, page(1.0)), (200, page(2.0))]).await,
        pool: Some("qwen-pool".into()),
        target_model: None,
    };
    let stable = ArmTarget {
        url: serve_pages(vec![(200, page(0.0))]).await,
        pool: Some("qwen-pool".into()),
        target_model: None,
    };
    let arms = || Ok((canary.clone(), stable.clone()));
    let mut analysis = ClusterAnalysis::default();
    // Before the window is due: a baseline scrape and no window.
    assert_eq!(
        analysis
            .observe_arms(&rollout.spec, &status, at(0), arms())
            .await,
        None
    );
    let result = analysis
        .observe_arms(&rollout.spec, &status, at(10), arms())
        .await
        .unwrap();
    assert_eq!(result.end, at(10));
    // 6 server errors of 116 requests since the baseline: above 1 %.
    assert_eq!(result.verdicts[0].verdict, Verdict::Fail, "{result:?}");
    assert_eq!(result.verdicts[0].samples, Some(116));
}

#[tokio::test]
async fn a_restarted_controller_starts_a_new_window() {
    let rollout = progressing_rollout();
    let status = rollout.status.clone().unwrap();
    let arm = ArmTarget {
        url: serve_pages(vec![(200, page(1.0))]).await,
        pool: Some("qwen-pool".into()),
        target_model: None,
    };
    // A fresh process (no history) whose first look is at a due window.
    let mut analysis = ClusterAnalysis::default();
    let result = analysis
        .observe_arms(
            &rollout.spec,
            &status,
            at(10),
            Ok((arm.clone(), arm.clone())),
        )
        .await
        .unwrap();
    assert_eq!(result.verdicts[0].verdict, Verdict::NoData, "{result:?}");
    assert!(
        result.verdicts[0]
            .message
            .contains("the next window will have one"),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unresolved_arm_is_no_data_with_the_reason() {
    let rollout = progressing_rollout();
    let status = rollout.status.clone().unwrap();
    let mut analysis = ClusterAnalysis::default();
    let reason = "Service llm/qwen-epp has no port named http-metrics or metrics".to_owned();
    let result = analysis
        .observe_arms(&rollout.spec, &status, at(10), Err(reason.clone()))
        .await
        .unwrap();
    assert_eq!(result.verdicts.len(), 1);
    assert_eq!(result.verdicts[0].verdict, Verdict::NoData);
    assert_eq!(result.verdicts[0].message, reason);
}

#[test]
fn m3_an_external_name_service_is_not_scraped() {
    let mut service = chart_service(chart_ports());
    let spec = service.spec.as_mut().unwrap();
    spec.type_ = Some("ExternalName".into());
    spec.external_name = Some("metadata.internal".into());
    let err = metrics_port(&service, None).unwrap_err();
    assert!(err.contains("ExternalName"), "{err}");
    assert!(err.contains("ClusterIP"), "{err}");
}
