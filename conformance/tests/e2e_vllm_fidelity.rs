//! The simulator against the real vLLM it imitates: the same requests to both, answers
//! compared by shape (every JSON path and its type), streamed chunk sequence, error bodies,
//! `/v1/models` (adapters with `parent`), the render endpoints, and the metric families and
//! labels the endpoint picker and the rollout controller read.
//!
//! A difference fails the test unless [`KNOWN`] lists it; each entry there is explained in
//! conformance/sim/README.md ("Differences from real vLLM"). So the simulator cannot drift
//! from vLLM unnoticed, and the list is the record of what differs and why.
//!
//! Needs `cargo xtask vllm setup` and the debug `switchyard-sim` (`cargo xtask test` does
//! both). Takes one of the machine's two real-vLLM slots.

#![allow(clippy::unwrap_used)]

#[path = "e2e_vllm_fidelity/shape.rs"]
mod shape;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_conformance::client::{HttpClient, HttpResponse};
use switchyard_conformance::ports;
use switchyard_conformance::process::ChildProcess;
use switchyard_conformance::vllm::VllmServer;
use switchyard_local::running::wait_ready;
use switchyard_local::stack::Readiness;
use switchyard_local::vllm::{ADAPTERS, Install, ServeOptions};
use switchyard_runtime::promtext::Exposition;

use shape::{chunk_kinds, diff, shape, sse_events};

/// Differences accepted: every difference found must start with one of these prefixes, and
/// every prefix must still match one (so a fixed difference leaves the list). The reasons
/// are in conformance/sim/README.md, "Differences from real vLLM".
const KNOWN: &[(&str, &str)] = &[
    (
        "models: - $.data[].permission",
        "OpenAI's legacy permission objects: no client or gateway component reads them",
    ),
    (
        "chat: - $.usage.prompt_tokens_details.created_cache_tokens",
        "vLLM 0.32's new count of cache blocks a request wrote; the simulator does not model it yet",
    ),
    (
        "chat-lora: - $.usage.prompt_tokens_details.created_cache_tokens",
        "as for chat",
    ),
    (
        "chat-stream: - $.usage.prompt_tokens_details.created_cache_tokens",
        "as for chat",
    ),
    (
        "chat-stream: finish chunk carries text: true vs false",
        "vLLM puts finish_reason on the last token's chunk; the simulator sends it in a chunk of \
         its own so no token waits for the next engine step",
    ),
    (
        "completion-stream: finish chunk carries text: true vs false",
        "as for chat-stream",
    ),
    (
        "responses: - ",
        "the simulator's Responses API answers the fields a gateway reads (id, output text, \
         status, usage counts), not the request echo and per-turn details",
    ),
    (
        "render-",
        "the render endpoints (vLLM `--enable-scale-out`) are not simulated",
    ),
];

/// Metric samples the picker (`EngineConfig::vllm`) and the rollout controller's Prometheus
/// queries read, with the labels they use.
const READ_METRICS: &[(&str, &[&str])] = &[
    ("vllm:num_requests_waiting", &[]),
    ("vllm:num_requests_running", &[]),
    ("vllm:kv_cache_usage_perc", &[]),
    (
        "vllm:lora_requests_info",
        &["running_lora_adapters", "waiting_lora_adapters", "max_lora"],
    ),
    ("vllm:cache_config_info", &["block_size", "num_gpu_blocks"]),
    ("vllm:request_success_total", &[]),
    ("vllm:generation_tokens_total", &[]),
    ("vllm:time_to_first_token_seconds_bucket", &["le"]),
    ("vllm:inter_token_latency_seconds_bucket", &["le"]),
];

struct Pair {
    real: VllmServer,
    sim: ChildProcess,
    sim_port: u16,
    client: HttpClient,
}

impl Pair {
    async fn start() -> Self {
        let install = Install::locate();
        let real = VllmServer::start(ServeOptions {
            lora_modules: vec![("lora-a".into(), install.adapter_dir(ADAPTERS[0]))],
            render: true,
            ..ServeOptions::default()
        })
        .await
        .unwrap();
        let sim_port = ports::free_port().unwrap();
        let mut cmd = Command::new(bin_dir().join("switchyard-sim"));
        cmd.args([
            "--model",
            "tiny",
            "--lora-modules",
            "lora-a",
            "--time-scale",
            "0",
        ]);
        cmd.args(["--max-model-len", "2048", "--block-size", "128"]);
        cmd.args(["--host", "127.0.0.1", "--port", &sim_port.to_string()]);
        let dir = real.log_path().with_file_name("sim.log");
        let mut sim = ChildProcess::spawn("sim", &cmd, &dir).unwrap();
        let ready = Readiness::Http(vec![format!("http://127.0.0.1:{sim_port}/health/ready")]);
        wait_ready(&mut sim, &ready, Duration::from_secs(30))
            .await
            .unwrap();
        Self {
            real,
            sim,
            sim_port,
            client: HttpClient::new(),
        }
    }

    async fn both(&self, method: &str, path: &str, body: Option<&Value>) -> [HttpResponse; 2] {
        let urls = [
            self.real.url(path),
            format!("http://127.0.0.1:{}{path}", self.sim_port),
        ];
        let mut out = Vec::new();
        for url in urls {
            let response = match (method, body) {
                ("POST", Some(body)) => self
                    .client
                    .post(
                        &url,
                        &[("content-type", "application/json")],
                        body.to_string(),
                    )
                    .await
                    .unwrap(),
                _ => self.client.get(&url, &[]).await.unwrap(),
            };
            out.push(response);
        }
        let [real, sim]: [HttpResponse; 2] = out.try_into().unwrap();
        [real, sim]
    }
}

fn bin_dir() -> PathBuf {
    match std::env::var_os("SWITCHYARD_BIN_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => dir.into(),
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .to_path_buf(),
    }
}

fn chat(model: &str, max_tokens: u32) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}],
           "max_tokens": max_tokens})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_simulator_matches_real_vllm() {
    let pair = Pair::start().await;
    let mut stream_chat = chat("tiny", 4);
    stream_chat["stream"] = true.into();
    stream_chat["stream_options"] = json!({"include_usage": true});
    let mut stream_completion = json!({"model": "tiny", "prompt": "once", "max_tokens": 3});
    stream_completion["stream"] = true.into();
    stream_completion["stream_options"] = json!({"include_usage": true});
    let cases: Vec<(&str, &str, &str, Option<Value>)> = vec![
        ("models", "GET", "/v1/models", None),
        (
            "chat",
            "POST",
            "/v1/chat/completions",
            Some(chat("tiny", 3)),
        ),
        (
            "chat-lora",
            "POST",
            "/v1/chat/completions",
            Some(chat("lora-a", 2)),
        ),
        (
            "chat-stream",
            "POST",
            "/v1/chat/completions",
            Some(stream_chat),
        ),
        (
            "completion",
            "POST",
            "/v1/completions",
            Some(json!({"model": "tiny", "prompt": "once upon", "max_tokens": 3})),
        ),
        (
            "completion-stream",
            "POST",
            "/v1/completions",
            Some(stream_completion),
        ),
        (
            "responses",
            "POST",
            "/v1/responses",
            Some(json!({"model": "tiny", "input": "hi", "max_output_tokens": 3})),
        ),
        (
            "unknown-model",
            "POST",
            "/v1/chat/completions",
            Some(chat("nope", 1)),
        ),
        (
            "too-long",
            "POST",
            "/v1/chat/completions",
            Some(chat("tiny", 5000)),
        ),
        (
            "render-chat",
            "POST",
            "/v1/chat/completions/render",
            Some(chat("tiny", 1)),
        ),
        (
            "render-completion",
            "POST",
            "/v1/completions/render",
            Some(json!({"model": "tiny", "prompt": "once upon"})),
        ),
    ];
    let mut found: Vec<String> = Vec::new();
    for (name, method, path, body) in &cases {
        let [real, sim] = pair.both(method, path, body.as_ref()).await;
        if real.status != sim.status {
            found.push(format!(
                "{name}: status {} vs {}",
                real.status.as_u16(),
                sim.status.as_u16()
            ));
        }
        if !real.status.is_success() {
            eprintln!(
                "{name}: vLLM {} {}\n  simulator {} {}",
                real.status,
                real.text(),
                sim.status,
                sim.text()
            );
        }
        let streamed = real
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let (real_shape, sim_shape) = if streamed {
            let (r, s) = (sse_events(&real.text()), sse_events(&sim.text()));
            let (rk, sk) = (chunk_kinds(&r), chunk_kinds(&s));
            if rk != sk {
                found.push(format!("{name}: chunk sequence {rk:?} vs {sk:?}"));
            }
            // Chunk counts are not compared: vLLM merges tokens into one chunk when its engine
            // runs ahead. Where the finish reason travels is.
            let finish_has_text = |events: &[Value]| {
                events.iter().any(|e| {
                    let choice = &e["choices"][0];
                    !choice["finish_reason"].is_null()
                        && [&choice["delta"]["content"], &choice["text"]]
                            .iter()
                            .any(|t| t.as_str().is_some_and(|t| !t.is_empty()))
                })
            };
            if finish_has_text(&r) != finish_has_text(&s) {
                found.push(format!(
                    "{name}: finish chunk carries text: {} vs {}",
                    finish_has_text(&r),
                    finish_has_text(&s)
                ));
            }
            let merge = |events: &[Value]| -> BTreeSet<String> {
                events
                    .iter()
                    .filter(|e| e.is_object())
                    .flat_map(shape)
                    .collect()
            };
            (merge(&r), merge(&s))
        } else {
            let parse = |r: &HttpResponse| r.json().unwrap_or_else(|_| Value::from(r.text()));
            (shape(&parse(&real)), shape(&parse(&sim)))
        };
        found.extend(
            diff(&real_shape, &sim_shape)
                .into_iter()
                .map(|d| format!("{name}: {d}")),
        );
        if *name == "models" {
            let listed = real.json().unwrap();
            let adapter = listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == "lora-a")
                .cloned()
                .unwrap();
            assert_eq!(adapter["parent"], "tiny", "vLLM lists adapters with parent");
        }
    }
    let [real, sim] = pair.both("GET", "/metrics", None).await;
    let (real, sim) = (real.text(), sim.text());
    for (metric, labels) in READ_METRICS {
        for (who, page) in [("vLLM", &real), ("simulator", &sim)] {
            let page = Exposition::parse(page);
            let sample = page.named(metric).next();
            let Some(sample) = sample else {
                found.push(format!("metrics: {who} has no {metric}"));
                continue;
            };
            for label in *labels {
                if sample.label(label).is_none() {
                    found.push(format!("metrics: {who}'s {metric} has no label {label}"));
                }
            }
        }
    }
    for difference in &found {
        eprintln!("difference: {difference}");
    }
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|d| !KNOWN.iter().any(|(prefix, _)| d.starts_with(prefix)))
        .collect();
    let fixed: Vec<&str> = KNOWN
        .iter()
        .map(|(prefix, _)| *prefix)
        .filter(|prefix| !found.iter().any(|d| d.starts_with(prefix)))
        .collect();
    assert!(
        unexpected.is_empty() && fixed.is_empty(),
        "simulator vs vLLM: {} unexpected differences:\n{}\n\nlisted but no longer found \
         (remove them from KNOWN and the README):\n{fixed:#?}\nsim log:\n{}",
        unexpected.len(),
        unexpected
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        pair.sim.log_tail(10)
    );
}
