//! BBR and endpoint-picker behaviours end to end: spoofed routing headers, bad bodies,
//! oversized bodies, SSE streaming, an empty pool, prefix-cache stickiness and LoRA affinity.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use super::gateway::{Gateway, Pool, TEST_SELECTION_HEADER};
use super::rule;
use super::stream::{post_streaming, start_streaming};

/// Client-sent copies of the routing headers (model, base model, destination endpoint) are
/// dropped: the body's model alone chooses the pool, the picker alone the endpoint.
#[tokio::test]
async fn bbr_spoofed_routing_headers_are_replaced() {
    let gw = Gateway::start(
        &[Pool::new("sp-a", "m-a", 1), Pool::new("sp-b", "m-b", 1)],
        &[rule("m-a", &[("sp-a", 1)]), rule("m-b", &[("sp-b", 1)])],
    )
    .await;
    let (b_replica, b_addr) = gw.endpoints("sp-b").remove(0);
    let b_addr = b_addr.to_string();
    let spoofed = [
        ("x-gateway-model-name", "m-b"),
        ("x-gateway-base-model-name", "m-b"),
        ("x-gateway-destination-endpoint", b_addr.as_str()),
    ];
    for _ in 0..3 {
        let response = gw.chat("m-a", &spoofed).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(gw.pool(&response).as_deref(), Some("sp-a"));
        // Negative: the endpoint the client named did not answer.
        assert_ne!(gw.replica(&response), Some(b_replica.as_str()));
    }
    // The spoofed values are real routes: a body naming m-b goes there.
    let response = gw.chat("m-b", &[]).await;
    assert_eq!(gw.pool(&response).as_deref(), Some("sp-b"));
}

/// Bodies BBR cannot route get a 400 with an OpenAI-style error naming the problem, before
/// any picker or replica sees them.
#[tokio::test]
async fn bbr_rejects_bad_bodies() {
    let gw = Gateway::start(
        &[Pool::new("bodies", "m-body", 1)],
        &[rule("m-body", &[("bodies", 1)])],
    )
    .await;
    let cases = [
        ("{not json", "invalid_json"),
        (r#"{"messages": []}"#, "missing_model"),
        (r#"{"model": 7, "messages": []}"#, "model_not_string"),
        (r#"{"model": "", "messages": []}"#, "empty_model"),
        (
            r#"{"model": "m-body", "model": "m-body"}"#,
            "duplicate_model",
        ),
    ];
    for (body, code) in cases {
        let response = gw.post("/v1/chat/completions", &[], body.to_owned()).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            response.text()
        );
        let error = response.json().unwrap();
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        assert_eq!(gw.replica(&response), None);
    }
    // Negative: a well-formed body for the same route is served.
    let response = gw.chat("m-body", &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

/// A body larger than the gateway buffers (4 MiB) is refused with 413 and reaches nobody.
#[tokio::test]
async fn oversized_body_gets_413() {
    let gw = Gateway::start(
        &[Pool::new("big", "m-big", 1)],
        &[rule("m-big", &[("big", 1)])],
    )
    .await;
    let huge = "x".repeat(5 * 1024 * 1024);
    let response = gw.chat_prompt("m-big", &huge, &[]).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(gw.replica(&response), None);
    // Negative: a long but acceptable prompt (64 KiB) is served.
    let long = "word ".repeat(64 * 1024 / 5);
    let response = gw.chat_prompt("m-big", &long, &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

/// A streamed completion reaches the client chunk by chunk as the replica produces tokens,
/// not buffered to the end by BBR, the picker or Envoy.
#[tokio::test]
async fn sse_streaming_arrives_token_by_token() {
    // Real step times (the simulator's default time scale) so tokens are spaced apart.
    let pool = Pool {
        simulator_args: &[],
        ..Pool::new("sse", "m-sse", 1)
    };
    let gw = Gateway::start(&[pool], &[rule("m-sse", &[("sse", 1)])]).await;
    let body = json!({
        "model": "m-sse",
        "messages": [{"role": "user", "content": "count"}],
        "max_tokens": 12,
        "ignore_eos": true,
        "stream": true,
    });
    let (status, chunks) =
        post_streaming(&gw.running.url("/v1/chat/completions"), body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let events = text.matches("data: ").count();
    assert!(events >= 12, "{events} events: {text}");
    // Negative: the events did not arrive in one piece at the end.
    assert!(chunks.len() >= 6, "only {} chunks", chunks.len());
    let first = chunks.first().unwrap();
    let last = chunks.last().unwrap();
    assert!(
        !String::from_utf8_lossy(&first.data).contains("[DONE]"),
        "the first chunk already holds the end"
    );
    assert!(
        last.at - first.at >= Duration::from_millis(20),
        "all chunks within {:?}",
        last.at - first.at
    );
}

/// A pool whose picker knows no endpoints answers 503, without reaching any replica.
#[tokio::test]
async fn empty_pool_gets_503() {
    let gw = Gateway::start(
        &[Pool::new("empty", "m-empty", 1)],
        &[rule("m-empty", &[("empty", 1)])],
    )
    .await;
    // Negative: served while the pool has its endpoint.
    let response = gw.chat("m-empty", &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let path = &gw.running.files.picker_files[0].1;
    std::fs::write(path, r#"{"poolName": "empty", "endpoints": []}"#).unwrap();
    // The picker polls its endpoints file every second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let response = loop {
        let response = gw.chat("m-empty", &[]).await;
        if response.status != StatusCode::OK || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.text()
    );
    assert_eq!(gw.replica(&response), None);
}

/// The picker's prefix-cache scorer keeps a repeated long prompt on one replica.
#[tokio::test]
async fn prefix_cache_stickiness() {
    let gw = Gateway::start(
        &[Pool::new("prefix", "m-prefix", 3)],
        &[rule("m-prefix", &[("prefix", 1)])],
    )
    .await;
    let prompt = |seed: usize| {
        (0..400)
            .map(|i| format!("w{}", (i * 7919 + seed * 104_729) % 100_003))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let shared = prompt(0);
    let mut sticky = BTreeSet::new();
    for _ in 0..8 {
        let response = gw.chat_prompt("m-prefix", &shared, &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        sticky.insert(gw.replica(&response).unwrap().to_owned());
    }
    assert_eq!(sticky.len(), 1, "one prompt went to {sticky:?}");
    // Negative: different prompts are spread, so the stickiness is the prefix's doing.
    let mut spread = BTreeSet::new();
    for seed in 1..=15 {
        let response = gw.chat_prompt("m-prefix", &prompt(seed), &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        spread.insert(gw.replica(&response).unwrap().to_owned());
    }
    assert!(
        spread.len() > 1,
        "15 distinct prompts all went to {spread:?}"
    );
}

/// The LoRA affinity scorer with upstream's conformance filter (to place the long requests
/// that load each adapter) and the KV scorer. No queue scorer: ours counts a request the
/// picker sent since the last scrape (50 ms) as queued, so at the default weights (queue 2,
/// LoRA 1) back-to-back requests for one adapter are pulled off the replica running it.
const LORA_PICKER_CONFIG: &str = "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: header-based-testing-filter
- type: lora-affinity-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: header-based-testing-filter
  - pluginRef: lora-affinity-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: max-score-picker
";

/// Requests for a LoRA adapter go to the replica already running it, as the replicas report
/// in `vllm:lora_requests_info` (one adapter slot each, as the quickstart's simulator).
#[tokio::test]
async fn lora_affinity_sends_an_adapter_to_the_replica_running_it() {
    let pool = Pool {
        adapters: &["ad-1", "ad-2"],
        // Real step times, so a long generation (1,000 tokens at ~12 ms each) keeps its
        // adapter running for the whole test; it is aborted when the test ends.
        simulator_args: &[],
        picker_args: vec!["--config-text".to_owned(), LORA_PICKER_CONFIG.to_owned()],
        ..Pool::new("lora", "m-lora", 3)
    };
    let gw = Gateway::start(&[pool], &[rule("m-lora", &[("lora", 1)])]).await;
    let endpoints = gw.endpoints("lora");
    // Each adapter held by a different replica, neither of them the first in plan order alone.
    let holders = [("ad-1", &endpoints[2]), ("ad-2", &endpoints[0])];
    let mut long = Vec::new();
    for (adapter, (name, addr)) in holders {
        let body = json!({
            "model": adapter,
            "messages": [{"role": "user", "content": "a long story"}],
            "max_tokens": 1000,
            "ignore_eos": true,
            "stream": true,
        });
        let pin = addr.to_string();
        let running = start_streaming(
            &gw.running.url("/v1/chat/completions"),
            &[(TEST_SELECTION_HEADER, &pin)],
            body.to_string(),
        )
        .await;
        assert_eq!(running.status, StatusCode::OK);
        assert_eq!(running.header("x-inference-pod"), Some(name.as_str()));
        long.push(running);
    }
    // Wait until each holder reports its adapter running, then for the picker's next scrape.
    for (adapter, (_, addr)) in holders {
        let label = format!("running_lora_adapters=\"{adapter}\"");
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let metrics = gw
                .client
                .get(&format!("http://{addr}/metrics"), &[])
                .await
                .unwrap()
                .text();
            if metrics.contains(&label) {
                break;
            }
            assert!(Instant::now() < deadline, "{addr} never reported {label}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Back to back per adapter: each pick comes before the picker's next scrape can show the
    // previous request.
    for (adapter, (name, _)) in holders {
        for round in 0..5 {
            let prompt = format!("{adapter} question {round}");
            let response = gw.chat_prompt(adapter, &prompt, &[]).await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            // Negative (with the other adapter's check): the two adapters land on two
            // different replicas, so this is not one replica winning every pick.
            assert_eq!(
                gw.replica(&response),
                Some(name.as_str()),
                "{adapter} request {round}"
            );
        }
    }
    // Still running: the affinity held while the adapters were in use.
    assert!(long.iter().all(|r| !r.is_finished()));
}
