//! Hostile clients through the real Envoy and the local stack (`cargo xtask up`'s quickstart):
//! issue 15's end-to-end proof that no client can steer routing, exhaust memory or blind a
//! rollout.
//!
//! At once, while well-behaved clients chat with the Llama pool:
//! - spoofers send every steering header a client could try (destination endpoint and its
//!   subset/served keys, forced model rewrite, objective, fairness id, TTL);
//! - 1,000 requests carry distinct 4 KiB forced-rewrite and fairness-id values, and 1,000 more
//!   distinct 4 KiB model names in the body;
//! - bodies at and just past the 32 MiB limit arrive six at a time (Envoy's buffer set above it);
//! - the Qwen pool's replicas answer non-streamed requests with 100 MiB bodies.
//!
//! Then: the well-behaved clients saw no error; BBR's and every picker's peak RSS stayed under
//! their chart limits (512 MiB, 4 GiB); every `/metrics` page is under 1 MiB; and, read from
//! the simulators' own record of what reached them, no spoofed header arrived and every
//! destination header a replica saw named that replica.
//!
//! Needs Envoy (`cargo xtask tools`) and the workspace binaries (`cargo build --bins`, which
//! `cargo xtask test` does first).

#![allow(clippy::unwrap_used)]

#[path = "e2e_hostile/stack.rs"]
mod stack;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use http::StatusCode;
use serde_json::json;
use switchyard_conformance::client::HttpClient;

use stack::{LLAMA, LLAMA_POOL, QWEN, QWEN_POOL, Stack, peak_rss_bytes};

const MIB: usize = 1024 * 1024;
/// The charts' memory limits (charts/bbr and charts/inferencepool values.yaml).
const BBR_LIMIT: u64 = 512 * MIB as u64;
const EPP_LIMIT: u64 = 4096 * MIB as u64;
const METRICS_PAGE_LIMIT: usize = MIB;

/// Every request header a client could use to steer the data plane, with the spoofed value.
fn spoofed_headers(victim: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("x-gateway-destination-endpoint", victim.to_string()),
        ("x-gateway-destination-endpoint-subset", victim.to_string()),
        ("x-gateway-destination-endpoint-served", victim.to_string()),
        ("x-gateway-model-name-rewrite", "food-review-2".to_owned()),
        (
            "x-gateway-inference-objective",
            "interactive-chat".to_owned(),
        ),
        ("x-gateway-inference-fairness-id", "tenant-a".to_owned()),
        ("x-llm-d-inference-objective", "interactive-chat".to_owned()),
        ("x-llm-d-inference-fairness-id", "tenant-a".to_owned()),
        ("x-llm-d-inference-ttl", "1h".to_owned()),
    ]
}

/// Header names that must never reach a model server, whoever sent them.
const NEVER_UPSTREAM: [&str; 8] = [
    "x-gateway-destination-endpoint-subset",
    "x-gateway-destination-endpoint-served",
    "x-gateway-model-name-rewrite",
    "x-gateway-inference-objective",
    "x-gateway-inference-fairness-id",
    "x-llm-d-inference-objective",
    "x-llm-d-inference-fairness-id",
    "x-llm-d-inference-ttl",
];

fn chat_body(model: &str, i: usize) -> String {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("request {i}")}],
        "max_tokens": 2,
    })
    .to_string()
}

async fn post(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> (StatusCode, Option<String>, usize) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    match client.post(url, &all, body).await {
        Ok(r) => (
            r.status,
            r.header("x-inference-pod").map(str::to_owned),
            r.body.len(),
        ),
        // A reset connection or a timeout is an error the client saw: status 599, the
        // reason where the pod name would be.
        Err(e) => (StatusCode::from_u16(599).unwrap(), Some(e.to_string()), 0),
    }
}

/// Well-behaved clients: Llama chats (base model and the `food-review` rewrite) until
/// stopped; the status of every answer.
fn well_behaved(stack: &Stack, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u16>> {
    let url = stack.url("/v1/chat/completions");
    let client = stack.client.clone();
    tokio::spawn(async move {
        let mut statuses = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let model = if i % 2 == 0 { LLAMA } else { "food-review" };
            let (status, _, _) = post(&client, &url, &[], chat_body(model, i)).await;
            statuses.push(status.as_u16());
            i += 1;
        }
        statuses
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn e2e_hostile_clients_cannot_steer_routing_exhaust_memory_or_blow_up_metrics() {
    let stack = Stack::start().await;
    let url = stack.url("/v1/chat/completions");
    let llama = stack.replicas(LLAMA_POOL);
    let qwen = stack.replicas(QWEN_POOL);
    for replica in stack.all_replicas() {
        let r = stack
            .client
            .request(
                http::Method::DELETE,
                &format!("http://{replica}/admin/headers"),
                &[],
                bytes::Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    // The Qwen pool's model servers answer with 100 MiB bodies.
    for replica in &qwen {
        let faults = json!({"response_pad_bytes": 100 * MIB}).to_string();
        let r = stack
            .client
            .post(&format!("http://{replica}/admin/faults"), &[], faults)
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let good = well_behaved(&stack, Arc::clone(&stop));

    // Spoofers: steering headers aimed at a Qwen replica, a forced rewrite, a priority.
    let victim = qwen[0];
    let spoofers = futures::stream::iter(0..200)
        .map(|i| {
            let (client, url) = (stack.client.clone(), url.clone());
            async move {
                let owned = spoofed_headers(victim);
                let headers: Vec<(&str, &str)> =
                    owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
                post(&client, &url, &headers, chat_body(LLAMA, i)).await
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>();

    // 1,000 distinct 4 KiB forced-rewrite and fairness-id values on valid requests.
    let long_values = futures::stream::iter(0..1_000)
        .map(|i| {
            let (client, url) = (stack.client.clone(), url.clone());
            async move {
                let value = format!("{i:06}-{}", "v".repeat(4089));
                let headers = [
                    ("x-gateway-model-name-rewrite", value.as_str()),
                    ("x-gateway-inference-fairness-id", value.as_str()),
                ];
                post(&client, &url, &headers, chat_body(LLAMA, i)).await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();

    // 1,000 distinct 4 KiB model names in the body.
    let long_models = futures::stream::iter(0..1_000)
        .map(|i| {
            let (client, url) = (stack.client.clone(), url.clone());
            async move {
                let model = format!("{i:06}-{}", "m".repeat(4089));
                post(&client, &url, &[], chat_body(&model, i)).await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();

    // Bodies at BBR's 32 MiB limit and just past it, six at a time (Envoy's buffer is set
    // above the limit, so they reach BBR and, when within it, the picker).
    let huge_bodies = futures::stream::iter(0..12)
        .map(|i| {
            let (client, url) = (stack.client.clone(), url.clone());
            let size = if i % 2 == 0 {
                32 * MIB
            } else {
                32 * MIB + 4096
            };
            async move { (size, post(&client, &url, &[], huge_body(i, size)).await) }
        })
        .buffer_unordered(6)
        .collect::<Vec<_>>();

    // Non-streamed Qwen requests whose answers are 100 MiB.
    let huge_answers = futures::stream::iter(0..4)
        .map(|i| {
            let (client, url) = (stack.client.clone(), url.clone());
            async move { post(&client, &url, &[], chat_body(QWEN, i)).await }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>();

    let (spoofed, long_values, long_models, huge_bodies, huge_answers) = tokio::join!(
        spoofers,
        long_values,
        long_models,
        huge_bodies,
        huge_answers
    );
    // Keep the well-behaved clients going a moment past the attack, then stop them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let good = good.await.unwrap();

    // Well-behaved clients saw no error.
    assert!(
        good.len() >= 20,
        "too few well-behaved requests: {}",
        good.len()
    );
    let errors: Vec<_> = good.iter().filter(|s| **s != 200).collect();
    assert!(
        errors.is_empty(),
        "well-behaved clients saw errors: {:?}\nepp: {}\nbbr: {}",
        tally(errors.iter().map(|s| **s)),
        stack.log_tail(&format!("epp-{LLAMA_POOL}")),
        stack.log_tail("bbr")
    );

    // Spoofed steering did not steer: served (the headers are ignored) by the Llama pool.
    for (status, pod, _) in &spoofed {
        assert_eq!(*status, StatusCode::OK, "a spoofed request failed: {pod:?}");
        let pod = pod.as_deref().unwrap_or_default();
        assert!(pod.contains("llama"), "a spoofed request reached {pod}");
    }
    // Long header values are ignored (bounded, untrusted): the requests are served.
    let long_value_statuses = tally(long_values.iter().map(|(s, _, _)| s.as_u16()));
    assert_eq!(
        long_value_statuses,
        BTreeMap::from([(200, 1_000)]),
        "requests with long steering values"
    );
    // Long model names are refused or unrouted, never a server error.
    for (status, _, _) in &long_models {
        assert!(status.is_client_error(), "a 4 KiB model name got {status}");
    }
    // Bodies past the limit: 413 with the JSON error body (or a budget refusal with its
    // reason); at the limit: never a server error of ours (the model server may refuse the
    // prompt as too long).
    for (size, (status, _, _)) in &huge_bodies {
        if *size > 32 * MIB {
            assert!(
                [
                    StatusCode::PAYLOAD_TOO_LARGE,
                    StatusCode::SERVICE_UNAVAILABLE
                ]
                .contains(status),
                "a {size}-byte body got {status}"
            );
        } else {
            // 504 is Envoy's message timeout (5 s for BBR): a debug build parsing six 32 MiB
            // bodies at once on two busy cores can take that long, a release build ~30 ms.
            assert!(
                !matches!(status.as_u16(), 500 | 502 | 599),
                "a {size}-byte body got {status}"
            );
        }
    }
    // 100 MiB answers pass through whole.
    for (status, _, len) in &huge_answers {
        assert_eq!(*status, StatusCode::OK);
        assert!(*len >= 100 * MIB, "a 100 MiB answer arrived as {len} bytes");
    }

    // Memory: peaks under the chart limits.
    let mut peaks = Vec::new();
    for (name, _) in stack.metrics_pages() {
        let peak = peak_rss_bytes(stack.pid(&name));
        let limit = if name == "bbr" { BBR_LIMIT } else { EPP_LIMIT };
        peaks.push(format!("{name} {} MiB", peak / MIB as u64));
        assert!(
            peak < limit,
            "{name} peaked at {peak} bytes (limit {limit})"
        );
    }
    // `/metrics` pages stay small whatever the clients sent.
    let mut pages: Vec<String> = Vec::new();
    for (name, addr) in stack.metrics_pages() {
        let page = stack
            .client
            .get(&format!("http://{addr}/metrics"), &[])
            .await
            .unwrap();
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.len() < METRICS_PAGE_LIMIT,
            "{name}'s /metrics is {} bytes",
            page.body.len()
        );
        assert!(
            !page.text().contains("vvvvvvvvvvvvvvvv"),
            "{name} labels a hostile value"
        );
        pages.push(format!("{name} {} KiB", page.body.len() / 1024));
    }
    eprintln!("peak RSS: {}", peaks.join(", "));
    eprintln!("/metrics pages: {}", pages.join(", "));
    eprintln!(
        "well-behaved requests: {} (all 200); spoofed: {}; long values: {}; long models: {}",
        good.len(),
        spoofed.len(),
        long_values.len(),
        long_models.len()
    );

    // What reached the model servers: no spoofed header, and destination headers name the
    // replica that received them.
    for replica in stack.all_replicas() {
        let seen = stack
            .client
            .get(&format!("http://{replica}/admin/headers"), &[])
            .await
            .unwrap()
            .json()
            .unwrap();
        for name in NEVER_UPSTREAM {
            assert!(
                seen["headers"].get(name).is_none(),
                "{name} reached {replica}: {}",
                seen["headers"][name]
            );
        }
        if let Some(values) = seen["headers"]["x-gateway-destination-endpoint"]["values"].as_array()
        {
            for value in values {
                assert_eq!(value, &json!(replica.to_string()), "at {replica}");
            }
        }
    }
    assert!(llama.len() >= 2);
}

/// A valid completion request of exactly `size` bytes, to the Qwen pool.
fn huge_body(i: usize, size: usize) -> String {
    let head = format!(r#"{{"model":"{QWEN}","max_tokens":1,"prompt":"{i}"#);
    let tail = r#""}"#;
    let fill = size - head.len() - tail.len();
    let mut body = String::with_capacity(size);
    body.push_str(&head);
    body.extend(std::iter::repeat_n('p', fill));
    body.push_str(tail);
    body
}

fn tally(statuses: impl Iterator<Item = u16>) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for s in statuses {
        *counts.entry(s).or_default() += 1;
    }
    counts
}
