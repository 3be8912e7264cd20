//! Token usage read from responses: the top-level `usage` object of a JSON
//! completion, or of the SSE event that carries it (the last one before
//! `[DONE]` when the client asked for `stream_options.include_usage`).
//!
//! Only the three counts are decoded, through borrowed structs that skip every
//! other field, so no JSON tree is built for a response.

use serde::Deserialize;

/// The token counts of one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens`.
    pub completion_tokens: u64,
    /// `usage.prompt_tokens_details.cached_tokens`, when the server reports it.
    pub cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    usage: Option<WireUsage>,
}

// The Responses API names the same counts `input_tokens`, `output_tokens` and
// `input_tokens_details` (found against a real vLLM, issue 20).
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default, alias = "input_tokens")]
    prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    prompt_tokens_details: Option<WireDetails>,
}

#[derive(Deserialize)]
struct WireDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// The usage of a JSON response body; `None` when it has none or is not JSON.
pub fn from_json(body: &[u8]) -> Option<Usage> {
    let usage = serde_json::from_slice::<Envelope>(body).ok()?.usage?;
    Some(Usage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cached_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens),
    })
}

/// A line longer than this is not a usage event; it is skipped rather than
/// buffered, so a huge SSE line cannot grow the EPP's memory.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Finds the usage event in an SSE body fed chunk by chunk, whatever the
/// chunk boundaries (an event may be split across chunks).
#[derive(Debug, Default)]
pub struct SseUsage {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Whether the current line outgrew [`MAX_LINE_BYTES`] and is skipped.
    skipping: bool,
    found: Option<Usage>,
    /// `data:` events carrying tokens: not `[DONE]`, not the role
    /// announcement OpenAI-style servers send first, not the usage-only event.
    /// One per token chunk, so a stream's token count when the server reports
    /// no usage, and the first one marks the first token.
    token_events: u64,
}

impl SseUsage {
    /// Scans `chunk`.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            if !self.skipping {
                if self.partial.is_empty() {
                    self.line(head);
                } else {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(head);
                    self.line(&line);
                }
            }
            self.partial.clear();
            self.skipping = false;
            rest = tail.get(1..).unwrap_or_default();
        }
        if !self.skipping && !rest.is_empty() {
            if self.partial.len() + rest.len() > MAX_LINE_BYTES {
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
    }

    /// The usage seen so far (the last event that carried one).
    pub fn usage(&self) -> Option<Usage> {
        self.found
    }

    /// The token-carrying `data:` events seen so far.
    pub fn token_events(&self) -> u64 {
        self.token_events
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload_is = |needle: &[u8]| contains(payload, needle);
        if payload.trim_ascii() != b"[DONE]"
            && !payload_is(b"\"role\"")
            && !payload_is(b"\"choices\":[]")
        {
            self.token_events += 1;
        }
        // Cheap pre-check: most events are token deltas without usage.
        if !contains(payload, b"\"usage\"") {
            return;
        }
        if let Some(usage) = from_json(payload.trim_ascii()) {
            self.found = Some(usage);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &[u8] = br#"{"id":"c1","object":"chat.completion","model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":"{\"usage\":1}"}}],
        "usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,
                 "prompt_tokens_details":{"cached_tokens":8}}}"#;

    #[test]
    fn json_usage_is_read_from_the_top_level_object_only() {
        assert_eq!(
            from_json(JSON),
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 34,
                cached_tokens: Some(8)
            })
        );
        assert_eq!(from_json(br#"{"usage":null}"#), None);
        assert_eq!(
            from_json(br#"{"choices":[{"usage":{"prompt_tokens":1}}]}"#),
            None
        );
        assert_eq!(from_json(b"not json"), None);
        assert_eq!(from_json(br#"{"usage":{"prompt_tokens":-1}}"#), None);
    }

    #[test]
    fn token_events_skip_the_role_announcement_usage_and_done() {
        let mut sse = SseUsage::default();
        sse.feed(
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        );
        assert_eq!(
            sse.token_events(),
            0,
            "the role chunk comes before any token"
        );
        sse.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n");
        sse.feed(b"data: {\"choices\":[{\"text\":\"b\"}]}\n\n: keep-alive\n\n");
        sse.feed(b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\ndata: [DONE]\n\n");
        assert_eq!(sse.token_events(), 2);
    }

    #[test]
    fn sse_usage_is_found_across_any_chunk_split() {
        let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\r\n\r\n\
data: [DONE]\n\n";
        let want = Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
            cached_tokens: None,
        });
        for split in 0..body.len() {
            let mut sse = SseUsage::default();
            let (a, b) = body.split_at(split);
            sse.feed(a);
            sse.feed(b);
            assert_eq!(sse.usage(), want, "split at {split}");
            assert_eq!(
                sse.token_events(),
                1,
                "split at {split}: only the delta carries a token"
            );
        }
        let mut byte_by_byte = SseUsage::default();
        body.iter()
            .for_each(|b| byte_by_byte.feed(std::slice::from_ref(b)));
        assert_eq!(byte_by_byte.usage(), want);
    }

    #[test]
    fn an_overlong_sse_line_is_skipped_not_buffered() {
        let mut sse = SseUsage::default();
        sse.feed(b"data: {\"usage\":{\"prompt_tokens\":1},\"pad\":\"");
        for _ in 0..100 {
            sse.feed(&[b'x'; 1024]);
        }
        assert!(sse.partial.len() <= MAX_LINE_BYTES);
        sse.feed(b"\"}\n");
        assert_eq!(sse.usage(), None, "the overlong line was dropped");
        sse.feed(b"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n");
        assert_eq!(sse.usage().map(|u| u.prompt_tokens), Some(3));
    }
}
