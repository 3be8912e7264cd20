use super::*;

fn extract(config: &EngineConfig, page: &str) -> Result<EndpointMetrics> {
    config.extract(&Exposition::parse(page))
}

#[test]
fn vllm_page() {
    let page = r#"
vllm:num_requests_waiting{model_name="m"} 3
vllm:num_requests_running{model_name="m"} 7
vllm:kv_cache_usage_perc{model_name="m"} 0.25
vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters=""} 100
vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql-lora, tweet-lora",waiting_lora_adapters="x"} 200
vllm:cache_config_info{block_size="16",num_gpu_blocks="2810"} 1
"#;
    let metrics = extract(&EngineConfig::vllm(), page).unwrap();
    assert_eq!(metrics.waiting_queue, 3);
    assert_eq!(metrics.running, 7);
    assert_eq!(metrics.kv_cache_usage, 0.25);
    assert_eq!(
        &*metrics.active_loras,
        &["sql-lora".into(), "tweet-lora".into()]
    );
    assert_eq!(&*metrics.waiting_loras, &["x".into()]);
    assert_eq!(metrics.max_loras, Some(4));
    assert_eq!(metrics.cache_block_size, Some(16));
    assert_eq!(metrics.cache_num_blocks, Some(2810));
}

#[test]
fn sglang_page() {
    let page = "sglang:num_queue_reqs 1\nsglang:num_running_reqs 2\nsglang:token_usage 0.5\n\
                sglang:cache_config_info{page_size=\"32\",num_pages=\"100\"} 1\n";
    let metrics = extract(&EngineConfig::sglang(), page).unwrap();
    assert_eq!((metrics.waiting_queue, metrics.running), (1, 2));
    assert_eq!(metrics.kv_cache_usage, 0.5);
    assert_eq!(metrics.cache_block_size, Some(32));
    assert_eq!(metrics.cache_num_blocks, Some(100));
    assert!(metrics.active_loras.is_empty());
}

#[test]
fn trtllm_serve_page() {
    let page = "trtllm_num_requests_waiting 4\ntrtllm_num_requests_running 5\n\
                trtllm_kv_cache_utilization 0.1\ntrtllm_kv_cache_tokens_per_block 64\ntrtllm_kv_cache_max_blocks 9000\n";
    let metrics = extract(&EngineConfig::trtllm_serve(), page).unwrap();
    assert_eq!((metrics.waiting_queue, metrics.running), (4, 5));
    assert_eq!(metrics.cache_block_size, Some(64));
    assert_eq!(metrics.cache_num_blocks, Some(9000));
}

#[test]
fn triton_page_selects_by_label() {
    let page = r#"
nv_trt_llm_request_metrics{model="ensemble",request_type="waiting"} 6
nv_trt_llm_request_metrics{model="ensemble",request_type="scheduled"} 8
nv_trt_llm_request_metrics{model="ensemble",request_type="context"} 99
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"} 0.75
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per"} 32
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max"} 512
"#;
    let metrics = extract(&EngineConfig::triton_tensorrt_llm(), page).unwrap();
    assert_eq!((metrics.waiting_queue, metrics.running), (6, 8));
    assert_eq!(metrics.kv_cache_usage, 0.75);
    assert_eq!(metrics.cache_block_size, Some(32));
    assert_eq!(metrics.cache_num_blocks, Some(512));
}

#[test]
fn missing_required_metric_says_what_to_fix() {
    let err = extract(&EngineConfig::vllm(), "sglang:num_queue_reqs 1\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("vllm:num_requests_waiting"), "{text}");
    assert!(text.contains("engine-type"), "{text}");
    assert!(text.contains("queuedRequestsSpec"), "{text}");
    assert_eq!(err.kind(), "metric_missing");
}

#[test]
fn insane_values_are_made_sane() {
    let page = "vllm:num_requests_waiting NaN\nvllm:num_requests_running -3\nvllm:kv_cache_usage_perc +Inf\n\
                vllm:cache_config_info{block_size=\"x\",num_gpu_blocks=\"16.0\"} 1\n";
    let metrics = extract(&EngineConfig::vllm(), page).unwrap();
    assert_eq!((metrics.waiting_queue, metrics.running), (0, 0));
    // A broken KV value reads as full (L11), not idle.
    assert_eq!(metrics.kv_cache_usage, 1.0);
    assert_eq!(metrics.cache_block_size, None);
    assert_eq!(metrics.cache_num_blocks, Some(16));
    let page = "vllm:num_requests_waiting 1e30\nvllm:num_requests_running 2.6\nvllm:kv_cache_usage_perc 1.5\n";
    let metrics = extract(&EngineConfig::vllm(), page).unwrap();
    assert_eq!((metrics.waiting_queue, metrics.running), (u32::MAX, 3));
    assert_eq!(metrics.kv_cache_usage, 1.0);
}

#[test]
fn l11_a_broken_kv_value_makes_a_server_look_full_not_idle() {
    for broken in ["NaN", "+Inf", "-Inf"] {
        let page = format!(
            "vllm:num_requests_waiting 0\nvllm:num_requests_running 0\nvllm:kv_cache_usage_perc {broken}\n"
        );
        let metrics = extract(&EngineConfig::vllm(), &page).unwrap();
        assert_eq!(metrics.kv_cache_usage, 1.0, "{broken}");
    }
}

#[test]
fn newest_timestamp_wins() {
    let page = "vllm:num_requests_waiting 1 200\nvllm:num_requests_waiting 9 100\n\
                vllm:num_requests_running 0\nvllm:kv_cache_usage_perc 0\n";
    let metrics = extract(&EngineConfig::vllm(), page).unwrap();
    assert_eq!(metrics.waiting_queue, 1);
}

#[test]
fn disabled_metrics_are_not_required() {
    let mut config = EngineConfig::vllm();
    config.queued_requests = None;
    config.running_requests = None;
    config.kv_usage = None;
    let metrics = extract(&config, "").unwrap();
    assert_eq!(metrics, EndpointMetrics::default());
}

#[test]
fn metric_spec_syntax() {
    let spec = MetricSpec::parse(
        "nv_trt_llm_request_metrics{request_type=waiting, model=\"e\"}",
        "queuedRequestsSpec",
    )
    .unwrap();
    assert_eq!(spec.name, "nv_trt_llm_request_metrics");
    assert_eq!(
        spec.labels,
        vec![
            ("request_type".into(), "waiting".into()),
            ("model".into(), "e".into())
        ]
    );
    assert_eq!(
        spec.to_string(),
        "nv_trt_llm_request_metrics{request_type=waiting,model=e}"
    );
    assert_eq!(MetricSpec::parse(" vllm:x ", "f").unwrap().name, "vllm:x");
    for bad in ["", "{a=b}", "m{a=b", "m{a}", "m{=b}", "9m", "m-x"] {
        let err = MetricSpec::parse(bad, "kvUsageSpec").unwrap_err();
        assert!(err.to_string().contains("kvUsageSpec"), "{bad:?}: {err}");
    }
}

#[test]
fn registry_picks_by_label_and_overrides_replace_whole_configs() {
    let registry = EngineRegistry::default();
    assert_eq!(registry.for_label(Some("sglang")).name, "sglang");
    assert_eq!(registry.for_label(None).name, "vllm");
    assert_eq!(registry.for_label(Some("typo")).name, "vllm");

    let mut custom = EngineConfig::vllm();
    custom.kv_usage = Some(MetricSpec::builtin("vllm:gpu_cache_usage_perc", &[]));
    let registry = EngineRegistry::new(vec![custom.clone()], "sglang").unwrap();
    assert_eq!(registry.get("vllm"), Some(&custom));
    assert_eq!(registry.for_label(None).name, "sglang");

    let err = EngineRegistry::new(vec![], "nope").unwrap_err();
    assert!(
        err.to_string().contains("known engines: vllm, sglang"),
        "{err}"
    );
}
