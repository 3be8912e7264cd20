//! OpenAI request bodies (the fields the simulator reads) and response bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// A chat message; `content` is a string or a list of parts.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`…
    #[serde(default)]
    pub role: String,
    /// Text or `[{"type":"text","text":…}, …]`.
    #[serde(default)]
    pub content: Value,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// Model or adapter name.
    pub model: String,
    /// Conversation.
    pub messages: Vec<ChatMessage>,
    /// Output cap (legacy name).
    pub max_tokens: Option<u32>,
    /// Output cap (current name; wins over `max_tokens`).
    pub max_completion_tokens: Option<u32>,
    /// Server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// vLLM extension: generate exactly `max_tokens`.
    #[serde(default)]
    pub ignore_eos: bool,
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// Model or adapter name.
    pub model: String,
    /// A string or a list of strings (joined).
    #[serde(default)]
    pub prompt: Value,
    /// Output cap; OpenAI's default for this endpoint is 16.
    pub max_tokens: Option<u32>,
    /// Server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// vLLM extension: generate exactly `max_tokens`.
    #[serde(default)]
    pub ignore_eos: bool,
}

/// `POST /v1/embeddings`.
#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    /// Model name.
    pub model: String,
    /// A string or a list of strings.
    pub input: Value,
}

/// `POST /v1/responses` (minimal: text input or message list, non-streaming).
#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    /// Model or adapter name.
    pub model: String,
    /// A string or a list of `{role, content}` items.
    pub input: Value,
    /// Output cap.
    pub max_output_tokens: Option<u32>,
    /// Prepended as a system message.
    pub instructions: Option<String>,
    /// Streaming is not simulated on this endpoint.
    #[serde(default)]
    pub stream: bool,
}

/// `POST /v1/load_lora_adapter` and `/v1/unload_lora_adapter`.
#[derive(Debug, Deserialize)]
pub struct LoraRequest {
    /// Adapter name (what clients put in `model`).
    pub lora_name: String,
    /// Where vLLM would load it from; accepted and ignored.
    #[serde(default)]
    pub lora_path: Option<String>,
}

/// Flattens message content (string or text parts) into `out`.
pub fn push_content(out: &mut String, content: &Value) {
    match content {
        Value::String(s) => out.push_str(s),
        Value::Array(parts) => {
            for p in parts {
                match p {
                    Value::String(s) => out.push_str(s),
                    Value::Object(o) => {
                        if let Some(Value::String(t)) = o.get("text") {
                            out.push_str(t);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// `system_fingerprint` of chat and completion answers and chunks: vLLM sends
/// `vllm-<version>-<build>` on every one.
pub const SYSTEM_FINGERPRINT: &str = concat!("switchyard-sim-", env!("CARGO_PKG_VERSION"));

/// `usage.prompt_tokens_details`.
#[derive(Debug, Serialize)]
pub struct PromptDetails {
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: u32,
}

/// `usage` of chat and completion responses.
#[derive(Debug, Serialize)]
pub struct Usage {
    /// Prompt length.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Sum of both.
    pub total_tokens: u32,
    /// Cache details.
    pub prompt_tokens_details: PromptDetails,
}

impl Usage {
    /// Usage block from counts.
    pub fn new(prompt: u32, completion: u32, cached: u32) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: PromptDetails {
                cached_tokens: cached,
            },
        }
    }
}

/// The OpenAI `finish_reason` of a finished request: `length` when it stopped at the client's
/// `max_tokens`, else `stop`. Shared by the whole-body and the streaming answers.
pub(super) fn finish_reason(max_tokens: Option<u32>, output: u32) -> &'static str {
    if max_tokens == Some(output) {
        "length"
    } else {
        "stop"
    }
}
