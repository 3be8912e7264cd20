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
    let names: Vec<String> = (0..labels::MAX_MODEL_LABELS + 5)
        .map(|i| format!("model-{i}"))
        .collect();
    // Names the pool knows (objectives), so only the combination cap applies.
    let mut known = PoolSnapshot::default();
    for name in &names {
        known.objectives.insert(name.clone(), 0);
    }
    let mut metrics = Metrics::new();
    metrics.learn_models_from(Arc::new(Datastore::new(known)));
    let labels = |m: &'static str| ModelLabels {
        model_name: m,
        target_model_name: m,
        priority: 0,
    };
    let first = metrics.model(labels("m"));
    let again = metrics.model(labels("m"));
    assert!(Arc::ptr_eq(&first, &again));
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

/// A datastore whose pool knows the models `llama` and `llama-v2` (a rewrite).
fn catalog() -> Arc<Datastore> {
    use switchyard_api::rewrite::{Match, ModelMatch};
    use switchyard_api::{
        InferenceModelRewriteRule, InferenceModelRewriteSpec, PoolObjectReference, TargetModel,
    };
    let snapshot = PoolSnapshot {
        pool_name: "pool-a".into(),
        rewrites: vec![Arc::new(InferenceModelRewriteSpec {
            pool_ref: PoolObjectReference {
                group: "inference.networking.k8s.io".into(),
                kind: "InferencePool".into(),
                name: "pool-a".into(),
            },
            rules: vec![InferenceModelRewriteRule {
                matches: vec![Match {
                    model: ModelMatch::exact("llama"),
                }],
                targets: vec![TargetModel {
                    model_rewrite: "llama-v2".into(),
                    weight: None,
                }],
            }],
        })],
        ..PoolSnapshot::default()
    };
    Arc::new(Datastore::new(snapshot))
}

#[test]
fn c1_a_thousand_hostile_model_names_keep_the_page_under_a_mebibyte() {
    let mut metrics = Metrics::new();
    metrics.learn_models_from(catalog());
    let legit = metrics.model(ModelLabels {
        model_name: "llama",
        target_model_name: "llama-v2",
        priority: 0,
    });
    for i in 0..1000 {
        // 4 KiB each, distinct, as model and as forced target.
        let hostile = format!("{i:04}{}", "x".repeat(4092));
        let handles = metrics.model(ModelLabels {
            model_name: &hostile,
            target_model_name: &hostile,
            priority: 0,
        });
        handles.requests.inc();
        handles.duration.observe(0.1);
        handles.ttft.observe(0.1);
        // Short, plain, unknown names: a few keep their own label, then `other`.
        let short = format!("m{i}");
        metrics
            .model(ModelLabels {
                model_name: &short,
                target_model_name: &short,
                priority: 0,
            })
            .requests
            .inc();
    }
    legit.requests.inc();
    let text = metrics.encode().unwrap();
    assert!(text.len() < 1 << 20, "the page is {} bytes", text.len());
    assert!(
        !text.contains("xxxx"),
        "a long hostile value became a label"
    );
    assert!(
        text.contains("inference_objective_request_total{model_name=\"llama\",target_model_name=\"llama-v2\",priority=\"0\"} 1"),
        "a model the pool knows keeps its own series"
    );
    assert!(
        text.contains("inference_objective_request_total{model_name=\"other\",target_model_name=\"other\",priority=\"0\"} "),
        "{text}"
    );
    let unknown = (0..1000)
        .filter(|i| text.contains(&format!("model_name=\"m{i}\"")))
        .count();
    assert_eq!(unknown, policy::MAX_UNKNOWN_MODEL_LABELS);
}

#[test]
fn c1_label_values_are_bounded_in_length_and_charset() {
    let mut metrics = Metrics::new();
    metrics.learn_models_from(catalog());
    let longest = "a".repeat(policy::MAX_LABEL_BYTES);
    let too_long = "b".repeat(policy::MAX_LABEL_BYTES + 1);
    for (name, label) in [
        (longest.as_str(), longest.as_str()),
        (too_long.as_str(), "other"),
        ("quote\"d", "other"),
        ("new\nline", "other"),
        ("ünï", "other"),
        ("", ""),
    ] {
        metrics
            .model(ModelLabels {
                model_name: name,
                target_model_name: "llama-v2",
                priority: 0,
            })
            .requests
            .inc();
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(&format!(
                "inference_objective_request_total{{model_name=\"{label}\",target_model_name=\"llama-v2\""
            )),
            "{name:?} → {label:?}\n{text}"
        );
    }
}

#[test]
fn c1_the_render_fails_rather_than_grow_past_its_budget() {
    let metrics = Metrics::new();
    let full = metrics.encode().unwrap();
    assert!(full.len() < MAX_PAGE_BYTES);
    assert!(metrics.encode_within(full.len()).is_ok());
    assert!(metrics.encode_within(full.len() - 1).is_err());
}

#[test]
fn l8_concurrent_scrapes_never_see_the_per_pod_series_half_rebuilt() {
    let metrics = Arc::new(Metrics::new());
    let mut snapshot = PoolSnapshot {
        pool_name: "pool-a".into(),
        ..PoolSnapshot::default()
    };
    for i in 0..50u8 {
        let mut endpoint = Endpoint::new(
            &format!("pod-{i}"),
            &format!("pod-{i}"),
            SocketAddr::from(([10, 0, 0, i], 8000)),
        );
        endpoint.metrics.waiting_queue = 1;
        snapshot.endpoints.push(endpoint);
    }
    let snapshot = Arc::new(snapshot);
    let scrapers: Vec<_> = (0..4)
        .map(|_| {
            let (metrics, snapshot) = (Arc::clone(&metrics), Arc::clone(&snapshot));
            std::thread::spawn(move || {
                for _ in 0..200 {
                    metrics.observe_pool(&snapshot);
                    let text = metrics.encode().unwrap();
                    let series = text
                        .lines()
                        .filter(|l| l.starts_with("inference_pool_per_pod_queue_size{"))
                        .count();
                    assert_eq!(series, 50, "a scrape lost per-pod series");
                }
            })
        })
        .collect();
    for scraper in scrapers {
        scraper.join().unwrap();
    }
}
