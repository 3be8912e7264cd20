//! The HTTP driver against an OpenAI-client-shaped test over real loopback HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, fast, send, sse_data, start};
use serde_json::{Value, json};
use switchyard_sim::tokens::count_tokens;

fn long_message() -> String {
    // 400 bytes = 100 tokens: several 16-token blocks, so a repeat hits the prefix cache.
    "The quick brown fox jumps over the lazy dog; "
        .repeat(9)
        .chars()
        .take(400)
        .collect()
}

#[tokio::test]
async fn chat_non_streaming_reports_usage_cache_and_model() {
    let r = start(fast("sim-a-0")).await;
    let c = client();
    let body = json!({
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": long_message()}],
        "max_tokens": 5,
        "ignore_eos": true,
    });
    let first = send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(body.clone()),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.pod(), "sim-a-0");
    let v = first.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "m");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(count_tokens(content), 5);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let prompt_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 100);
    assert_eq!(
        v["usage"]["total_tokens"].as_u64().unwrap(),
        prompt_tokens + 5
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

    let again = send(&c, r.addr, "POST", "/v1/chat/completions", Some(body))
        .await
        .json();
    let cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached >= 96 && cached < prompt_tokens,
        "cached {cached} of {prompt_tokens}"
    );
}

#[tokio::test]
async fn chat_streaming_sends_chunks_usage_and_done() {
    let r = start(fast("sim-b-0")).await;
    let c = client();
    let body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "max_completion_tokens": 6,
        "ignore_eos": true,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let resp = send(&c, r.addr, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.pod(), "sim-b-0");
    assert!(
        resp.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let data = sse_data(&resp.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["model"] == "m" && c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(count_tokens(&text), 6);
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("length")]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    assert!(usage["usage"]["prompt_tokens_details"]["cached_tokens"].is_u64());
}

#[tokio::test]
async fn completions_embeddings_responses_and_models() {
    let mut opts = fast("sim-c-0");
    opts.mode = switchyard_sim::http::Mode::Echo;
    opts.served_model_names = vec!["m".into(), "alias".into()];
    let r = start(opts).await;
    let c = client();

    let v = send(
        &c,
        r.addr,
        "POST",
        "/v1/completions",
        Some(json!({"model": "alias", "prompt": "echo me back", "max_tokens": 50})),
    )
    .await
    .json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["model"], "alias",
        "the response names the requested model"
    );
    assert_eq!(v["choices"][0]["text"], "echo me back");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let s = send(
        &c,
        r.addr,
        "POST",
        "/v1/completions",
        Some(json!({"model": "m", "prompt": "abcdefgh", "stream": true})),
    )
    .await
    .text();
    let data = sse_data(&s);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let text: String = data[..data.len() - 1]
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "abcdefgh");

    let e = send(
        &c,
        r.addr,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "m", "input": ["one", "two"]})),
    )
    .await
    .json();
    assert_eq!(e["data"].as_array().unwrap().len(), 2);
    let norm: f64 = e["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum();
    assert!((norm - 1.0).abs() < 1e-9);

    let resp = send(
        &c,
        r.addr,
        "POST",
        "/v1/responses",
        Some(json!({"model": "m", "input": "say hi", "instructions": "short"})),
    )
    .await
    .json();
    assert_eq!(resp["object"], "response");
    assert_eq!(resp["output"][0]["content"][0]["text"], "say hi");
    assert!(resp["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let models = send(&c, r.addr, "GET", "/v1/models", None).await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["m", "alias"]);
}

#[tokio::test]
async fn errors_use_the_openai_shape_and_carry_the_pod_header() {
    let r = start(fast("sim-d-0")).await;
    let c = client();
    let nf = send(
        &c,
        r.addr,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "nope", "messages": []})),
    )
    .await;
    assert_eq!(nf.status, 404);
    assert_eq!(nf.pod(), "sim-d-0");
    let v = nf.json();
    let err = v["error"].as_object().unwrap();
    assert_eq!(
        err.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["code", "message", "param", "type"]
    );
    assert_eq!(err["type"], "NotFoundError");
    assert_eq!(err["code"], 404);
    assert_eq!(err["param"], "model");
    assert!(err["message"].as_str().unwrap().contains("nope"));

    let bad = send(
        &c,
        r.addr,
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "no model"})),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "BadRequestError");

    let long = send(
        &c,
        r.addr,
        "POST",
        "/v1/completions",
        Some(json!({"model": "m", "prompt": "x", "max_tokens": 1_000_000})),
    )
    .await;
    assert_eq!(long.status, 400);
    assert!(
        long.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length")
    );

    let missing = send(&c, r.addr, "GET", "/no/such/path", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.pod(), "sim-d-0");
}

#[tokio::test]
async fn full_waiting_queue_answers_429() {
    let mut opts = ReplicaOptionsExt::seats(1, 1);
    opts.time_scale = 1.0;
    let r = start(opts).await;
    let c = client();
    let hold = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2000, "ignore_eos": true, "stream": true});
    // Streams return once queued; keep their bodies unread so the requests stay alive.
    let mut held = Vec::new();
    for _ in 0..2 {
        let req = hyper::Request::post(format!("http://{}/v1/chat/completions", r.addr))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                hold.to_string(),
            )))
            .unwrap();
        let resp = c.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        held.push(resp);
    }
    let third = send(&c, r.addr, "POST", "/v1/chat/completions", Some(hold)).await;
    assert_eq!(third.status, 429);
    assert_eq!(third.json()["error"]["type"], "RateLimitError");
    drop(held);
}

struct ReplicaOptionsExt;

impl ReplicaOptionsExt {
    fn seats(seats: usize, queue: usize) -> switchyard_sim::http::ReplicaOptions {
        let mut o = fast("sim-e-0");
        o.engine.max_num_seqs = seats;
        o.engine.max_waiting = queue;
        o
    }
}
