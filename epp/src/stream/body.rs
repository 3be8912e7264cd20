//! What the EPP reads from an OpenAI-style request body: the model, the text
//! whose prefix is matched, the cache salt and whether the response streams.
//!
//! One borrowed serde pass: the fields we need are kept as raw JSON slices of
//! the body, everything else is skipped without building a tree. The stream
//! parses a body once: what scheduling needs is kept as a [`PromptSpan`] (byte
//! ranges into the body) plus the owned model name, so a request that waits
//! for flow-control admission is not parsed a second time when it resumes.
//!
//! The same pass records where the top-level `model` value lies, so a rewrite splices the
//! new name in at that span ([`model_splice`]) instead of re-encoding the body through a
//! `serde_json::Value` tree, which costs 16–32× the body in memory (review finding C2).

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
    /// Anthropic's `/v1/messages` (and `/v1/messages/count_tokens`): system, tools and
    /// messages, as llm-d-router's `anthropic-parser` reads them.
    Messages,
}

impl Api {
    /// The API for a request path (query ignored); upstream's default when
    /// nothing matches is Completions.
    pub fn from_path(path: &str) -> Self {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        if path.ends_with("/v1/messages") || path.ends_with("/v1/messages/count_tokens") {
            Self::Messages
        } else if path.ends_with("/conversations") {
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
    /// The requested model, decoded (borrowed unless it holds escapes).
    #[serde(skip)]
    pub model: Option<Cow<'a, str>>,
    /// Where the raw JSON of `model` (quotes included) lies in the body.
    #[serde(skip)]
    pub model_span: Range<usize>,
    #[serde(borrow, default, rename = "model")]
    model_raw: Option<&'a RawValue>,
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
    /// Anthropic Messages' system prompt (a string or content blocks).
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
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
        let mut parsed: Self = serde_json::from_slice(body)
            .map_err(|err| format!("failed to parse request body: {err}"))?;
        if let Some(raw) = parsed.model_raw {
            let text = raw.get();
            let BorrowedStr(model) = serde_json::from_str(text).map_err(|_| {
                format!("the request body's `model` is {text:.64}, not a string; name the model as a JSON string")
            })?;
            parsed.model_span = offset_in(body, text.as_bytes());
            parsed.model = Some(model);
        }
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
            Api::Messages => {
                let parts = [raw(self.system), raw(self.tools), raw(self.messages)];
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
            Api::Messages => PromptSpan {
                parts: [range(self.system), range(self.tools), range(self.messages)],
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

/// A JSON string that deserialises borrowed from its input when it holds no escapes
/// (serde's own `Cow<str>` always copies).
#[derive(Deserialize)]
struct BorrowedStr<'a>(#[serde(borrow)] Cow<'a, str>);

/// The body with its top-level `model` value (at `span`, from [`RequestBody::model_span`])
/// replaced by `model`, as three slices to send in turn: the bytes before the value, the new
/// value encoded as a JSON string, the bytes after. Nothing else in the body is touched or
/// copied; a span that does not fit the body yields the body unchanged.
pub fn model_splice<'b>(body: &'b [u8], span: &Range<usize>, model: &str) -> ModelSplice<'b> {
    match (body.get(..span.start), body.get(span.end..)) {
        (Some(before), Some(after)) if span.start < span.end => ModelSplice {
            before,
            // Escapes quotes, backslashes and control characters, so any name stays valid JSON.
            value: serde_json::to_vec(model).unwrap_or_default(),
            after,
        },
        _ => ModelSplice {
            before: body,
            value: Vec::new(),
            after: &[],
        },
    }
}

/// A body with its model spliced in: see [`model_splice`].
#[derive(Debug)]
pub struct ModelSplice<'b> {
    /// The bytes before the model value.
    pub before: &'b [u8],
    /// The new model value, a JSON string.
    pub value: Vec<u8>,
    /// The bytes after it.
    pub after: &'b [u8],
}

impl ModelSplice<'_> {
    /// The parts in order.
    pub fn parts(&self) -> [&[u8]; 3] {
        [self.before, &self.value, self.after]
    }

    /// The spliced body's length.
    pub fn len(&self) -> usize {
        self.before.len() + self.value.len() + self.after.len()
    }

    /// Whether the spliced body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
