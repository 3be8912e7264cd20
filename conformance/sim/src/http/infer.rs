//! Inference endpoints: chat, completions, embeddings and a minimal responses API.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::actor::{Command, Delivery};
use super::openai::{
    ChatRequest, CompletionRequest, EmbeddingRequest, ResponsesRequest, SYSTEM_FINGERPRINT,
    StreamOptions, Usage, finish_reason, push_content,
};
use super::stream::{StreamKind, StreamSpec, sse_response};
use super::{ApiError, AppState, Mode};
use crate::engine::{EngineRequest, RequestOutcome};
use crate::error::SimError;
use crate::rng::SplitMix64;
use crate::tokens::{count_tokens, generate_text, sample_output_len};

/// A request ready for the engine, plus what the response needs.
pub(super) struct Prepared {
    pub model: String,
    pub req: EngineRequest,
    /// Text echo mode repeats.
    pub echo: Option<String>,
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| SimError::BadRequest(format!("invalid request body: {e}")).into())
}

/// Tokenises and hashes `prompt`, resolves base model vs adapter and decides the output
/// length.
fn prepare(
    state: &AppState,
    model: String,
    prompt: &str,
    echo_of: Option<String>,
    max_tokens: Option<u32>,
    ignore_eos: bool,
    stream: bool,
) -> Prepared {
    let lora: Option<Arc<str>> =
        (!state.served.contains(&model)).then(|| Arc::from(model.as_str()));
    let prompt_tokens = count_tokens(prompt).max(1);
    let block_hashes = state
        .hasher
        .hash_text(lora.as_deref(), prompt.as_bytes())
        .into();
    let mut output = match state.mode {
        Mode::Random => {
            sample_output_len(&mut SplitMix64::new(state.draw()), max_tokens, ignore_eos)
        }
        Mode::Echo => {
            let n = echo_of.as_deref().map_or(1, count_tokens).max(1);
            max_tokens.map_or(n, |m| n.min(m.max(1)))
        }
    };
    if max_tokens.is_none() {
        // Without an explicit cap the answer just stops at the context limit.
        let room = state
            .max_model_len
            .saturating_sub(prompt_tokens as usize)
            .max(1);
        output = output.min(u32::try_from(room).unwrap_or(u32::MAX));
    }
    Prepared {
        model,
        req: EngineRequest {
            prompt_tokens,
            block_hashes,
            output_tokens: output,
            max_tokens_param: max_tokens,
            lora,
            stream,
            tag: 0,
        },
        echo: (state.mode == Mode::Echo).then(|| echo_of.unwrap_or_default()),
    }
}

/// Hands the request to the engine task and waits until it is queued or refused.
pub(super) async fn submit(
    state: &AppState,
    req: EngineRequest,
) -> Result<mpsc::UnboundedReceiver<Delivery>, ApiError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    state
        .tx
        .send(Command::Submit { req, reply: tx })
        .await
        .map_err(|_| SimError::EngineGone)?;
    match rx.recv().await {
        Some(Delivery::Accepted) => Ok(rx),
        Some(Delivery::Rejected(e)) => Err(e.into()),
        _ => Err(SimError::EngineGone.into()),
    }
}

/// The SSE answer shared by the chat and completion endpoints; `kind` picks the
/// chunk schema and the id prefix.
fn stream_reply(
    state: &AppState,
    rx: mpsc::UnboundedReceiver<Delivery>,
    kind: StreamKind,
    model: String,
    echo: Option<String>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
) -> Response {
    let id_prefix = match kind {
        StreamKind::Chat => "chatcmpl",
        StreamKind::Completion => "cmpl",
    };
    sse_response(
        state,
        rx,
        StreamSpec {
            kind,
            id: response_id(state, id_prefix),
            model,
            include_usage: stream_options.is_some_and(|o| o.include_usage),
            max_tokens,
            echo,
        },
    )
}

/// Waits for the end of a non-streaming request.
async fn finish(mut rx: mpsc::UnboundedReceiver<Delivery>) -> Result<RequestOutcome, ApiError> {
    while let Some(d) = rx.recv().await {
        match d {
            Delivery::Done(o) => return Ok(o),
            Delivery::Rejected(e) => return Err(e.into()),
            Delivery::Accepted | Delivery::Token(_) => {}
        }
    }
    Err(SimError::Aborted.into())
}

fn response_id(state: &AppState, prefix: &str) -> String {
    format!("{prefix}-{:016x}", state.draw())
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct ChatMessageOut<'a> {
    role: &'a str,
    content: String,
}

#[derive(Serialize)]
struct ChatResponse<'a> {
    id: String,
    object: &'a str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: Usage,
    system_fingerprint: &'static str,
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    state.injected()?;
    let r: ChatRequest = parse(&body)?;
    let mut prompt = String::new();
    for m in &r.messages {
        prompt.push_str(&m.role);
        prompt.push_str(": ");
        push_content(&mut prompt, &m.content);
        prompt.push('\n');
    }
    let echo = r.messages.last().map(|m| {
        let mut s = String::new();
        push_content(&mut s, &m.content);
        s
    });
    let max_tokens = r.max_completion_tokens.or(r.max_tokens);
    let p = prepare(
        &state,
        r.model,
        &prompt,
        echo,
        max_tokens,
        r.ignore_eos,
        r.stream,
    );
    let rx = submit(&state, p.req).await?;
    if r.stream {
        return Ok(stream_reply(
            &state,
            rx,
            StreamKind::Chat,
            p.model,
            p.echo,
            r.stream_options,
            max_tokens,
        ));
    }
    let o = finish(rx).await?;
    let body = ChatResponse {
        id: response_id(&state, "chatcmpl"),
        object: "chat.completion",
        created: state.created,
        model: &p.model,
        choices: [ChatChoice {
            index: 0,
            message: ChatMessageOut {
                role: "assistant",
                content: generate_text(p.echo.as_deref(), o.output_tokens),
            },
            logprobs: None,
            finish_reason: finish_reason(max_tokens, o.output_tokens),
        }],
        usage: Usage::new(o.prompt_tokens, o.output_tokens, o.cached_tokens),
        system_fingerprint: SYSTEM_FINGERPRINT,
    };
    Ok(Json(body).into_response())
}

/// `POST /v1/completions`.
pub(super) async fn completions(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.injected()?;
    let r: CompletionRequest = parse(&body)?;
    let mut prompt = String::new();
    push_content(&mut prompt, &r.prompt);
    // OpenAI's documented default for this endpoint.
    let max_tokens = Some(r.max_tokens.unwrap_or(16));
    let p = prepare(
        &state,
        r.model,
        &prompt,
        Some(prompt.clone()),
        max_tokens,
        r.ignore_eos,
        r.stream,
    );
    let rx = submit(&state, p.req).await?;
    if r.stream {
        return Ok(stream_reply(
            &state,
            rx,
            StreamKind::Completion,
            p.model,
            p.echo,
            r.stream_options,
            max_tokens,
        ));
    }
    let o = finish(rx).await?;
    let body = json!({
        "id": response_id(&state, "cmpl"),
        "object": "text_completion",
        "created": state.created,
        "model": p.model,
        "choices": [{
            "index": 0,
            "text": generate_text(p.echo.as_deref(), o.output_tokens),
            "logprobs": null,
            "finish_reason": finish_reason(max_tokens, o.output_tokens),
        }],
        "usage": Usage::new(o.prompt_tokens, o.output_tokens, o.cached_tokens),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    });
    Ok(Json(body).into_response())
}

/// `POST /v1/embeddings`: the inputs go through the engine as one prefill (so they cost
/// what a prompt of that length costs) and come back as small deterministic unit vectors.
pub(super) async fn embeddings(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.injected()?;
    let r: EmbeddingRequest = parse(&body)?;
    let inputs: Vec<String> = match &r.input {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                let mut s = String::new();
                push_content(&mut s, v);
                s
            })
            .collect(),
        v => {
            let mut s = String::new();
            push_content(&mut s, v);
            vec![s]
        }
    };
    let joined = inputs.concat();
    let mut p = prepare(&state, r.model, &joined, None, Some(1), true, false);
    p.req.output_tokens = 1;
    let o = finish(submit(&state, p.req).await?).await?;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed(text)}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": p.model,
        "usage": {"prompt_tokens": o.prompt_tokens, "total_tokens": o.prompt_tokens},
    }))
    .into_response())
}

/// An 8-dimensional unit vector derived from the text's hash.
fn embed(text: &str) -> Vec<f64> {
    let mut rng = SplitMix64::new(xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
    let v: Vec<f64> = (0..8).map(|_| rng.next_f64() - 0.5).collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    v.into_iter().map(|x| x / norm).collect()
}

/// `POST /v1/responses`: text or message-list input, non-streaming.
pub(super) async fn responses(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.injected()?;
    let r: ResponsesRequest = parse(&body)?;
    if r.stream {
        return Err(
            SimError::BadRequest("streaming is not simulated on /v1/responses".into()).into(),
        );
    }
    let mut prompt = String::new();
    if let Some(i) = &r.instructions {
        prompt.push_str("system: ");
        prompt.push_str(i);
        prompt.push('\n');
    }
    let mut last = String::new();
    match &r.input {
        Value::Array(items) => {
            for item in items {
                last.clear();
                push_content(&mut last, item.get("content").unwrap_or(item));
                prompt.push_str(item.get("role").and_then(Value::as_str).unwrap_or("user"));
                prompt.push_str(": ");
                prompt.push_str(&last);
                prompt.push('\n');
            }
        }
        v => {
            push_content(&mut last, v);
            prompt.push_str("user: ");
            prompt.push_str(&last);
        }
    }
    let p = prepare(
        &state,
        r.model,
        &prompt,
        Some(last),
        r.max_output_tokens,
        false,
        false,
    );
    let o = finish(submit(&state, p.req).await?).await?;
    let id = response_id(&state, "resp");
    let incomplete = r.max_output_tokens == Some(o.output_tokens);
    Ok(Json(json!({
        "id": id,
        "object": "response",
        "created_at": state.created,
        "model": p.model,
        "status": if incomplete { "incomplete" } else { "completed" },
        "output": [{
            "type": "message",
            "id": format!("msg-{id}"),
            "role": "assistant",
            "status": "completed",
            "content": [{
                "type": "output_text",
                "text": generate_text(p.echo.as_deref(), o.output_tokens),
                "annotations": [],
            }],
        }],
        "usage": {
            "input_tokens": o.prompt_tokens,
            "output_tokens": o.output_tokens,
            "total_tokens": o.prompt_tokens + o.output_tokens,
            "input_tokens_details": {"cached_tokens": o.cached_tokens},
        },
    }))
    .into_response())
}
