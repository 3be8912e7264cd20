//! `/metrics` (parsed with the crate's Prometheus parser), faults, LoRA endpoints and
//! several replicas from one set of flags.
#![allow(clippy::unwrap_used)]

mod common;

use clap::Parser;
use common::{client, fast, send, sse_data, start, try_send};
use serde_json::json;
use switchyard_sim::cli::Cli;
use switchyard_sim::metrics::parse::{MetricType, parse};
use switchyard_sim::metrics::{EngineKind, SGLANG_NAMES, VLLM_NAMES};

fn chat(model: &str, n: u32) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "tell me about KV caches, please, at length; how blocks are hashed, shared and evicted when memory runs short"}], "max_tokens": n, "ignore_eos": true})
}

#[tokio::test]
async fn vllm_metrics_parse_and_carry_every_reference_name() {
    let mut opts = fast("sim-m-0");
    opts.adapters = vec!["tenant-a".into()];
    let r = start(opts).await;
    let c = client();
    for _ in 0..3 {
        assert_eq!(
            send(
                &c,
                r.addr,
                "POST",
                "/v1/chat/completions",
                Some(chat("m", 4))
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(
        send(
            &c,
            r.addr,
            "POST",
            "/v1/chat/completions",
            Some(chat("tenant-a", 2))
        )
        .await
        .status,
        200
    );

    let resp = send(&c, r.addr, "GET", "/metrics", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.pod(), "sim-m-0");
    let text = resp.text();
    let exp = parse(&text).unwrap();
    for name in VLLM_NAMES {
        assert!(exp.has(name), "missing {name}");
    }
    let m = [("model_name", "m")];
    assert_eq!(exp.get("vllm:generation_tokens_total", &m), Some(14.0));
    assert_eq!(
        exp.get(
            "vllm:request_success_total",
            &[("finished_reason", "length")]
        ),
        Some(4.0)
    );
    assert_eq!(exp.get("vllm:num_requests_running", &m), Some(0.0));
    assert_eq!(exp.get("vllm:num_requests_waiting", &m), Some(0.0));
    assert_eq!(
        exp.get("vllm:kv_cache_usage_perc", &m),
        exp.get("vllm:gpu_cache_usage_perc", &m)
    );
    assert!(
        exp.get("vllm:prefix_cache_hits_total", &m).unwrap() > 0.0,
        "repeated prompt hits"
    );
    assert_eq!(
        exp.get("vllm:time_to_first_token_seconds_count", &m),
        Some(4.0)
    );
    assert_eq!(
        exp.get("vllm:time_to_first_token_seconds_bucket", &[("le", "+Inf")]),
        Some(4.0)
    );
    assert_eq!(
        exp.get("vllm:inter_token_latency_seconds_count", &m),
        Some(10.0)
    );
    let cache = exp.find("vllm:cache_config_info", &[]).unwrap();
    assert_eq!(cache.label("block_size").as_deref(), Some("16"));
    assert_eq!(cache.label("num_gpu_blocks").as_deref(), Some("31250"));
    assert_eq!(cache.value, 1.0);
    let lora = exp.find("vllm:lora_requests_info", &[]).unwrap();
    assert_eq!(lora.label("max_lora").as_deref(), Some("1"));
    assert_eq!(lora.label("running_lora_adapters").as_deref(), Some(""));
    assert_eq!(lora.label("waiting_lora_adapters").as_deref(), Some(""));
    assert!(
        lora.value > 1.7e9,
        "value is a Unix timestamp: {}",
        lora.value
    );
    assert_eq!(
        exp.type_of("vllm:time_to_first_token_seconds"),
        Some(MetricType::Histogram)
    );
    assert_eq!(
        exp.type_of("vllm:num_preemptions_total"),
        Some(MetricType::Counter)
    );
}

#[tokio::test]
async fn sglang_names_with_engine_sglang() {
    let mut opts = fast("sim-s-0");
    opts.kind = EngineKind::Sglang;
    let r = start(opts).await;
    let c = client();
    send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(chat("m", 3)),
    )
    .await;
    let text = send(&c, r.addr, "GET", "/metrics", None).await.text();
    let exp = parse(&text).unwrap();
    for name in SGLANG_NAMES {
        assert!(exp.has(name), "missing {name}");
    }
    assert!(!exp.samples.iter().any(|s| s.name.starts_with("vllm:")));
    assert_eq!(exp.get("sglang:generation_tokens_total", &[]), Some(3.0));
    assert_eq!(
        exp.find("sglang:cache_config_info", &[])
            .unwrap()
            .label("page_size")
            .as_deref(),
        Some("16")
    );
}

#[tokio::test]
async fn faults_switch_at_run_time() {
    let r = start(fast("sim-f-0")).await;
    let c = client();
    let set = |body: serde_json::Value| {
        let c = c.clone();
        let addr = r.addr;
        async move { send(&c, addr, "POST", "/admin/faults", Some(body)).await }
    };

    // Error injection by rate and status.
    assert_eq!(
        set(json!({"failure_injection_rate": 100, "failure_status": [503]}))
            .await
            .status,
        200
    );
    let failed = send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(chat("m", 1)),
    )
    .await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json()["error"]["type"], "ServiceUnavailableError");
    assert_eq!(failed.pod(), "sim-f-0");

    // Slow start.
    set(json!({"not_ready_for_secs": 3600})).await;
    assert_eq!(
        send(&c, r.addr, "GET", "/health/ready", None).await.status,
        503
    );
    assert_eq!(send(&c, r.addr, "GET", "/health", None).await.status, 200);
    let current = send(&c, r.addr, "GET", "/admin/faults", None).await.json();
    assert!(current["not_ready_for_secs"].as_f64().unwrap() > 3000.0);
    assert_eq!(
        current["failure_injection_rate"], 0.0,
        "a POST replaces all faults"
    );

    // Huge metrics body, still a valid exposition.
    set(json!({"metrics_huge_bytes": 2_000_000})).await;
    let big = send(&c, r.addr, "GET", "/metrics", None).await;
    assert!(big.body.len() >= 2_000_000);
    assert!(parse(&big.text()).is_ok_and(|exp| exp.has("vllm:num_requests_running")));

    // A stream that dies mid-response: no [DONE], the body ends in an error.
    set(json!({"stream_die_after_tokens": 2})).await;
    let mut stream_req = chat("m", 10);
    stream_req["stream"] = json!(true);
    match try_send(&c, r.addr, "POST", "/v1/chat/completions", Some(stream_req)).await {
        Err(e) => assert!(e.contains("body error"), "{e}"),
        Ok(resp) => panic!("stream completed: {}", resp.text()),
    }

    // A hanging /metrics.
    set(json!({"metrics_hang": true})).await;
    let hung = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        send(&c, r.addr, "GET", "/metrics", None),
    )
    .await;
    assert!(hung.is_err(), "metrics answered while hanging");

    // Everything off again.
    let cleared = set(json!({})).await.json();
    assert_eq!(cleared["metrics_hang"], false);
    assert_eq!(
        send(&c, r.addr, "GET", "/health/ready", None).await.status,
        200
    );
    let ok = send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(chat("m", 1)),
    )
    .await;
    assert_eq!(ok.status, 200);
    let bad = set(json!({"latency_multiplier": -1})).await;
    assert_eq!(bad.status, 400);
    let unknown = set(json!({"no_such_fault": 1})).await;
    assert_eq!(unknown.status, 400);
}

#[tokio::test]
async fn lora_adapters_load_and_unload() {
    let r = start(fast("sim-l-0")).await;
    let c = client();
    let load = json!({"lora_name": "ad1", "lora_path": "/adapters/ad1"});
    assert_eq!(
        send(
            &c,
            r.addr,
            "POST",
            "/v1/chat/completions",
            Some(chat("ad1", 1))
        )
        .await
        .status,
        404
    );
    let ok = send(
        &c,
        r.addr,
        "POST",
        "/v1/load_lora_adapter",
        Some(load.clone()),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        send(&c, r.addr, "POST", "/v1/load_lora_adapter", Some(load))
            .await
            .status,
        400
    );
    let v = send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(chat("ad1", 2)),
    )
    .await
    .json();
    assert_eq!(v["model"], "ad1");
    let models = send(&c, r.addr, "GET", "/v1/models", None).await.json();
    assert_eq!(models["data"][1]["id"], "ad1");
    assert_eq!(models["data"][1]["parent"], "m");
    let unload = json!({"lora_name": "ad1"});
    assert_eq!(
        send(
            &c,
            r.addr,
            "POST",
            "/v1/unload_lora_adapter",
            Some(unload.clone())
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(&c, r.addr, "POST", "/v1/unload_lora_adapter", Some(unload))
            .await
            .status,
        404
    );
    assert_eq!(
        send(
            &c,
            r.addr,
            "POST",
            "/v1/chat/completions",
            Some(chat("ad1", 1))
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn replicas_from_flags_have_their_own_names_and_engines() {
    let cli = Cli::parse_from([
        "switchyard-sim",
        "--replicas",
        "2",
        "--name-prefix",
        "pool-a",
        "--model",
        "m",
        "--time-scale",
        "0",
    ]);
    let mut handles = Vec::new();
    for i in 0..cli.replicas {
        handles.push(start(cli.replica(i).unwrap()).await);
    }
    let c = client();
    let mut stream_req = chat("m", 3);
    stream_req["stream"] = json!(true);
    for (i, h) in handles.iter().enumerate() {
        let resp = send(
            &c,
            h.addr,
            "POST",
            "/v1/chat/completions",
            Some(stream_req.clone()),
        )
        .await;
        assert_eq!(resp.pod(), format!("pool-a-{i}"));
        assert_eq!(
            sse_data(&resp.text()).last().map(String::as_str),
            Some("[DONE]")
        );
    }
    // Only replica 0 gets a second request: the engines are independent.
    send(
        &c,
        handles[0].addr,
        "POST",
        "/v1/chat/completions",
        Some(chat("m", 3)),
    )
    .await;
    let text0 = send(&c, handles[0].addr, "GET", "/metrics", None)
        .await
        .text();
    let text1 = send(&c, handles[1].addr, "GET", "/metrics", None)
        .await
        .text();
    let gen0 = parse(&text0).unwrap();
    let gen1 = parse(&text1).unwrap();
    assert_eq!(gen0.get("vllm:generation_tokens_total", &[]), Some(6.0));
    assert_eq!(gen1.get("vllm:generation_tokens_total", &[]), Some(3.0));
}

#[tokio::test]
async fn admin_headers_report_what_reached_the_replica_and_padding_inflates_json_answers() {
    let r = start(fast("sim-h-0")).await;
    let c = client();
    send(&c, r.addr, "DELETE", "/admin/headers", None).await;
    let body = json!({"response_pad_bytes": 200_000});
    assert_eq!(
        send(&c, r.addr, "POST", "/admin/faults", Some(body))
            .await
            .status,
        200
    );
    let answer = send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(chat("m", 1)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.len() >= 200_000, "{}", answer.body.len());
    assert!(answer.json()["choices"].is_array());

    let seen = send(&c, r.addr, "GET", "/admin/headers", None).await.json();
    // The test client sends no x- header of its own; nothing is invented.
    assert_eq!(seen["headers"], json!({}), "{seen}");
    let cleared = send(&c, r.addr, "DELETE", "/admin/headers", None).await;
    assert_eq!(cleared.status, 200);
}
