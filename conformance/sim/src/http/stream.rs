//! Server-sent-event responses: one chunk per token, a closing chunk with the finish
//! reason, an optional usage chunk, then `data: [DONE]`.

use std::collections::VecDeque;
use std::io;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::actor::Delivery;
use super::openai::{SYSTEM_FINGERPRINT, Usage, finish_reason};
use crate::tokens::{echo_token_text, random_token_text};

/// Which chunk schema to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKind {
    /// `chat.completion.chunk` with `delta`.
    Chat,
    /// `text_completion` with `text`.
    Completion,
}

/// What the stream needs to know about its request.
pub(super) struct StreamSpec {
    pub kind: StreamKind,
    pub id: String,
    pub model: String,
    pub include_usage: bool,
    pub max_tokens: Option<u32>,
    pub echo: Option<String>,
}

struct State {
    rx: mpsc::UnboundedReceiver<Delivery>,
    spec: StreamSpec,
    created: u64,
    queue: VecDeque<Result<Event, io::Error>>,
    die_after: Option<u32>,
    sent: u32,
    done: bool,
}

impl State {
    fn chunk(&self, choice: Value) -> Event {
        let object = match self.spec.kind {
            StreamKind::Chat => "chat.completion.chunk",
            StreamKind::Completion => "text_completion",
        };
        let body = json!({
            "id": self.spec.id,
            "object": object,
            "created": self.created,
            "model": self.spec.model,
            "choices": [choice],
            "system_fingerprint": SYSTEM_FINGERPRINT,
        });
        Event::default().data(body.to_string())
    }

    fn token_chunk(&self, text: &str, finish: Option<&str>) -> Event {
        let choice = match self.spec.kind {
            StreamKind::Chat => {
                let delta = if finish.is_some() {
                    json!({})
                } else {
                    json!({"content": text})
                };
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
            }
            StreamKind::Completion => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
            }
        };
        self.chunk(choice)
    }
}

/// Turns a request's delivery channel into an SSE response.
pub(super) fn sse_response(
    state: &AppState,
    rx: mpsc::UnboundedReceiver<Delivery>,
    spec: StreamSpec,
) -> Response {
    let mut st = State {
        rx,
        created: state.created,
        queue: VecDeque::new(),
        die_after: state.faults.load().faults.stream_die_after_tokens,
        sent: 0,
        done: false,
        spec,
    };
    if st.spec.kind == StreamKind::Chat {
        // Like OpenAI and vLLM, the first chunk announces the role before any text.
        let first = json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null});
        let ev = st.chunk(first);
        st.queue.push_back(Ok(ev));
    }
    let stream = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.rx.recv().await {
                Some(Delivery::Token(i)) => {
                    if st.die_after.is_some_and(|n| st.sent >= n) {
                        // An error item makes hyper drop the connection mid-body.
                        st.done = true;
                        return Some((Err(io::Error::other("injected fault: stream died")), st));
                    }
                    st.sent += 1;
                    let text = match &st.spec.echo {
                        Some(p) => echo_token_text(p, i),
                        None => random_token_text(i),
                    };
                    let ev = st.token_chunk(text, None);
                    st.queue.push_back(Ok(ev));
                }
                Some(Delivery::Done(o)) => {
                    let reason = finish_reason(st.spec.max_tokens, o.output_tokens);
                    let last = st.token_chunk("", Some(reason));
                    st.queue.push_back(Ok(last));
                    if st.spec.include_usage {
                        let usage = Usage::new(o.prompt_tokens, o.output_tokens, o.cached_tokens);
                        let object = match st.spec.kind {
                            StreamKind::Chat => "chat.completion.chunk",
                            StreamKind::Completion => "text_completion",
                        };
                        let body = json!({
                            "id": st.spec.id,
                            "object": object,
                            "created": st.created,
                            "model": st.spec.model,
                            "choices": [],
                            "usage": usage,
                            "system_fingerprint": SYSTEM_FINGERPRINT,
                        });
                        st.queue
                            .push_back(Ok(Event::default().data(body.to_string())));
                    }
                    st.queue.push_back(Ok(Event::default().data("[DONE]")));
                    st.done = true;
                }
                Some(Delivery::Accepted) => {}
                Some(Delivery::Rejected(e)) => {
                    st.done = true;
                    return Some((Err(io::Error::other(e.to_string())), st));
                }
                None => {
                    st.done = true;
                    return Some((Err(io::Error::other("engine stopped")), st));
                }
            }
        }
    });
    Sse::new(stream).into_response()
}
