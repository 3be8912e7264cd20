use std::net::SocketAddr;

use super::*;
use crate::datastore::Endpoint;

#[test]
fn upstream_names_and_labels() {
    let metrics = Metrics::new();
    let handles = metrics.model(ModelLabels {
        model_name: "llama",
        target_model_name: "llama-v2",
        priority: 5,
    });
    handles.requests.inc();
    handles.request_sizes.observe(100.0);
    handles.duration.observe(0.5);
    handles.running.inc();
    handles.error(503);
    for status in [200, 200, 302, 404, 429, 500, 503, 99, 600] {
        handles.response(status);
    }
    handles.ttft.observe(0.25);
    handles.tpot.observe(0.02);
    metrics.observe_scheduling(2e-5);
    metrics.stream_error("protocol");
    let mut snapshot = PoolSnapshot {
        pool_name: "pool-a".into(),
        ..PoolSnapshot::default()
    };
    let mut endpoint = Endpoint::new("a-rank-0", "a", SocketAddr::from(([10, 0, 0, 1], 8000)));
    endpoint.metrics.waiting_queue = 4;
    endpoint.metrics.kv_cache_usage = 0.5;
    snapshot.endpoints.push(endpoint);
    metrics.observe_pool(&snapshot);
    let text = metrics.encode().unwrap();
    for line in [
        "inference_objective_request_total{model_name=\"llama\",target_model_name=\"llama-v2\",priority=\"5\"} 1",
        "inference_objective_request_error_total{model_name=\"llama\",target_model_name=\"llama-v2\",error_code=\"ServiceUnavailable\"} 1",
        "inference_objective_running_requests{model_name=\"llama\"} 1",
        "inference_objective_request_duration_seconds_count{model_name=\"llama\",target_model_name=\"llama-v2\"} 1",
        "inference_objective_request_sizes_count{model_name=\"llama\",target_model_name=\"llama-v2\"} 1",
        "inference_pool_ready_pods{name=\"pool-a\"} 1",
        "inference_pool_average_queue_size{name=\"pool-a\"} 4.0",
        "inference_pool_average_kv_cache_utilization{name=\"pool-a\"} 0.5",
        "inference_pool_per_pod_queue_size{name=\"pool-a\",model_server_pod=\"a-rank-0\"} 4",
        "inference_extension_scheduler_e2e_duration_seconds_count 1",
        "switchyard_epp_stream_errors_total{kind=\"protocol\"} 1",
        "inference_objective_request_ttft_seconds_count{model_name=\"llama\",target_model_name=\"llama-v2\"} 1",
        "inference_objective_request_tpot_seconds_sum{model_name=\"llama\",target_model_name=\"llama-v2\"} 0.02",
        "switchyard_epp_model_server_responses_total{model_name=\"llama\",target_model_name=\"llama-v2\",status_class=\"2xx\"} 2",
        "switchyard_epp_model_server_responses_total{model_name=\"llama\",target_model_name=\"llama-v2\",status_class=\"3xx\"} 1",
        "switchyard_epp_model_server_responses_total{model_name=\"llama\",target_model_name=\"llama-v2\",status_class=\"4xx\"} 1",
        "switchyard_epp_model_server_responses_total{model_name=\"llama\",target_model_name=\"llama-v2\",status_class=\"429\"} 1",
        "switchyard_epp_model_server_responses_total{model_name=\"llama\",target_model_name=\"llama-v2\",status_class=\"5xx\"} 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains("inference_extension_info{commit="), "{text}");
    // Departed endpoints disappear from the per-pod gauge.
    metrics.observe_pool(&PoolSnapshot::default());
    let text = metrics.encode().unwrap();
    assert!(!text.contains("model_server_pod=\"a-rank-0\""), "{text}");
}

#[test]
fn handles_are_cached_and_model_labels_are_capped() {
    let metrics = Metrics::new();
    let labels = |m: &'static str| ModelLabels {
        model_name: m,
        target_model_name: m,
        priority: 0,
    };
    let first = metrics.model(labels("m"));
    let again = metrics.model(labels("m"));
    assert!(Arc::ptr_eq(&first, &again));
    let names: Vec<String> = (0..labels::MAX_MODEL_LABELS + 5)
        .map(|i| format!("model-{i}"))
        .collect();
    for name in &names {
        metrics
            .model(ModelLabels {
                model_name: name,
                target_model_name: name,
                priority: 0,
            })
            .requests
            .inc();
    }
    let text = metrics.encode().unwrap();
    let series = text
        .lines()
        .filter(|l| l.starts_with("inference_objective_request_total{"))
        .count();
    assert_eq!(series, labels::MAX_MODEL_LABELS + 1, "the cap plus `other`");
    assert!(
        text.contains("inference_objective_request_total{model_name=\"other\",target_model_name=\"other\",priority=\"0\"} 6"),
        "{text}"
    );
}
