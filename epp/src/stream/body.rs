//! What the EPP reads from an OpenAI-style request body: the model, the text
//! whose prefix is matched, the cache salt and whether the response streams.
//!
//! One borrowed serde pass: the fields we need are kept as raw JSON slices of
//! the body, everything else is skipped without building a tree. The stream
//! parses a body once: what scheduling needs is kept as a [`PromptSpan`] (byte
//! ranges into the body) plus the owned model name, so a request that waits
//! for flow-control admission is not parsed a second time when it resumes.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The API a request path addresses, which decides the text hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `/v1/completions`: the prompt.
    Completions,
    /// `/v1/chat/completions`: the JSON of `messages`.
    Chat,
    /// `/v1/responses`: instructions, tools and input.
    Responses,
    /// `/v1/conversations`: the items.
    Conversations,
    /// `/v1/embeddings`: the input.
    Embeddings,
}

impl Api {
    /// The API for a request path (query ignored); upstream's default when
    /// nothing matches is Completions.
    pub fn from_path(path: &str) -> Self {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        if path.ends_with("/conversations") {
            Self::Conversations
        } else if path.ends_with("/responses") {
            Self::Responses
        } else if path.ends_with("/chat/completions") {
            Self::Chat
        } else if path.ends_with("/embeddings") {
            Self::Embeddings
        } else {
            Self::Completions
        }
    }
}

/// The parts of a request body the EPP uses, borrowed from the body.
#[derive(Debug, Deserialize)]
pub struct RequestBody<'a> {
    /// The requested model.
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    instructions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
    #[serde(borrow, default)]
    items: Option<&'a RawValue>,
    /// vLLM's `cache_salt`, which partitions the prefix cache.
    #[serde(borrow, default)]
    pub cache_salt: Option<Cow<'a, str>>,
    /// Whether the client asked for a streamed (SSE) response.
    #[serde(default)]
    pub stream: Option<bool>,
}

impl<'a> RequestBody<'a> {
    /// Parses `body`; the error text is for the client's 400.
    pub fn parse(body: &'a [u8]) -> Result<Self, String> {
        #[cfg(test)]
        parse_count::bump();
        let parsed: Self = serde_json::from_slice(body)
            .map_err(|err| format!("failed to parse request body: {err}"))?;
        match parsed.model.as_deref() {
            Some(model) if !model.is_empty() => Ok(parsed),
            _ => Err("the request body has no `model`; name the model to serve the request".into()),
        }
    }

    /// The text whose prefix is matched for `api` (raw JSON, as upstream
    /// hashes the JSON of messages). Borrowed except for the Responses API,
    /// which joins three fields.
    pub fn prefix_text(&self, api: Api) -> Cow<'a, [u8]> {
        let raw = |v: Option<&'a RawValue>| v.map_or(&b""[..], |v| v.get().as_bytes());
        match api {
            Api::Completions => Cow::Borrowed(raw(self.prompt)),
            Api::Chat => Cow::Borrowed(raw(self.messages)),
            Api::Embeddings => Cow::Borrowed(raw(self.input)),
            Api::Conversations => Cow::Borrowed(raw(self.items)),
            Api::Responses => {
                let parts = [raw(self.instructions), raw(self.tools), raw(self.input)];
                Cow::Owned(parts.concat())
            }
        }
    }

    /// Where [`RequestBody::prefix_text`] for `api` lies in `body`, the slice
    /// this view was parsed from; the span outlives the borrowed view.
    pub fn prompt_span(&self, api: Api, body: &[u8]) -> PromptSpan {
        let range =
            |v: Option<&'a RawValue>| v.map_or(0..0, |v| offset_in(body, v.get().as_bytes()));
        match api {
            Api::Completions => PromptSpan::one(range(self.prompt)),
            Api::Chat => PromptSpan::one(range(self.messages)),
            Api::Embeddings => PromptSpan::one(range(self.input)),
            Api::Conversations => PromptSpan::one(range(self.items)),
            Api::Responses => PromptSpan {
                parts: [
                    range(self.instructions),
                    range(self.tools),
                    range(self.input),
                ],
                joined: true,
            },
        }
    }
}

/// The prompt text of a parsed body as byte ranges into that body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromptSpan {
    parts: [Range<usize>; 3],
    /// Whether the text is the concatenation of the parts (the Responses API)
    /// rather than the first part alone.
    joined: bool,
}

impl PromptSpan {
    fn one(range: Range<usize>) -> Self {
        Self {
            parts: [range, 0..0, 0..0],
            joined: false,
        }
    }

    /// The prompt text in `body` (the body the span was taken from); borrowed
    /// except for the Responses API, which joins three fields.
    pub fn text<'b>(&self, body: &'b [u8]) -> Cow<'b, [u8]> {
        let slice = |range: &Range<usize>| body.get(range.clone()).unwrap_or_default();
        if self.joined {
            Cow::Owned(self.parts.iter().flat_map(slice).copied().collect())
        } else {
            Cow::Borrowed(slice(&self.parts[0]))
        }
    }
}

/// The range `part` occupies inside `whole`; `part` is a sub-slice serde
/// borrowed from `whole`, so the subtraction is exact (an empty range if not).
fn offset_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= whole.len() => start..end,
        _ => 0..0,
    }
}

/// Replaces the top-level `model` of a JSON object body, re-marshalling it
/// (only done when a rewrite changed the model).
pub fn with_model(body: &[u8], model: &str) -> Result<Vec<u8>, String> {
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|err| format!("failed to parse request body: {err}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "the request body is not a JSON object".to_owned())?;
    object.insert("model".into(), serde_json::Value::String(model.into()));
    serde_json::to_vec(&value).map_err(|err| format!("failed to re-encode request body: {err}"))
}

/// Counts [`RequestBody::parse`] calls on this thread, so tests can show a
/// request is parsed once even when it waits for admission.
#[cfg(test)]
pub(crate) mod parse_count {
    use std::cell::Cell;

    thread_local! {
        static PARSES: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn bump() {
        PARSES.with(|count| count.set(count.get() + 1));
    }

    /// Parses on this thread so far.
    pub(crate) fn get() -> usize {
        PARSES.with(Cell::get)
    }
}
