//! The response path of a [`RequestStream`]: status and SSE detection on the
//! headers, then the body passed through (SSE unbuffered, JSON at its end) with
//! a rewritten model name put back to the one the client asked for.
//!
//! The proxy reports which endpoint served the request in the response
//! headers' metadata (docs/upstream.md#epp-protocol, "Served endpoint"); with upstream's
//! `destination-endpoint-served-verifier` configured it is echoed to the
//! client, which is how upstream's `GatewayDestinationEndpointServed`
//! conformance test checks the gateway.

use std::net::SocketAddr;

use super::reply::{HeadersReply, Reply};
use super::{
    Ending, Env, Phase, RESPONSE_HEADERS_MARKER, RequestStream, SERVED_ENDPOINT_TEST_HEADER,
    push_chunks, rewrite, usage,
};

/// What the response metadata says about the endpoint that served the
/// request: `envoy.lb` → `x-gateway-destination-endpoint-served`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedEndpoint<'a> {
    /// The proxy sent no `envoy.lb` metadata.
    NoLbMetadata,
    /// `envoy.lb` metadata without the key (or with a value that is not a string).
    NoServedKey,
    /// The endpoint as the proxy wrote it (`ip:port`).
    Reported(&'a str),
}

impl ServedEndpoint<'_> {
    /// The verifier's header value: the endpoint, or upstream's failure text
    /// saying which part of the metadata is missing.
    pub fn verifier_value(self) -> String {
        match self {
            Self::NoLbMetadata => "fail: missing envoy lb metadata".to_owned(),
            Self::NoServedKey => "fail: missing destination endpoint served metadata".to_owned(),
            Self::Reported(endpoint) => endpoint.to_owned(),
        }
    }
}

// === impl RequestStream (response path) ===

impl RequestStream {
    pub(super) fn on_response_headers(
        &mut self,
        headers: &[(&str, &[u8])],
        end_of_stream: bool,
        served: ServedEndpoint<'_>,
        env: &Env<'_>,
    ) -> Vec<Reply> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        self.response_status = get(":status")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse().ok());
        self.progress.responded = self.response_status;
        self.account_served(served, env);
        let content_type = get("content-type");
        if content_type.is_some_and(|v| v.starts_with(b"text/event-stream")) {
            self.streaming = true;
        } else if content_type.is_some_and(|v| !is_json(v)) {
            // Only a JSON body is worth holding (to restore the model, read the usage);
            // anything else (NDJSON streams, binary) goes on as it arrives.
            self.response_passthrough = true;
        }
        self.phase = Phase::ResponseBody;
        self.restorer = match (&self.labels.client_model, &self.labels.target_model) {
            (Some(client), Some(target)) if client != target => {
                Some(rewrite::ModelRestorer::new(target, client))
            }
            _ => None,
        };
        if end_of_stream {
            self.finish(Ending::Completed, env.now);
        }
        let mut set_headers = vec![(RESPONSE_HEADERS_MARKER.to_owned(), "true".to_owned())];
        if env.scheduler.config().verify_served_endpoint {
            set_headers.push((
                SERVED_ENDPOINT_TEST_HEADER.to_owned(),
                served.verifier_value(),
            ));
        }
        vec![Reply::ResponseHeaders(HeadersReply {
            set_headers,
            ..HeadersReply::default()
        })]
    }

    /// Accounts the request on the endpoint that served it: its load and prefix move there
    /// if it was a fallback (L7), and its outcome feeds outlier ejection (H6). Without a
    /// report (a local reply for a refused connection carries none) the target is the one
    /// that was tried.
    fn account_served(&mut self, served: ServedEndpoint<'_>, env: &Env<'_>) {
        let (Some(status), Some(pick)) = (self.response_status, &mut self.pick) else {
            return;
        };
        let reported = match served {
            ServedEndpoint::Reported(text) => text.trim().parse::<SocketAddr>().ok(),
            ServedEndpoint::NoLbMetadata | ServedEndpoint::NoServedKey => None,
        };
        if let Some(endpoint) = reported.and_then(|a| env.snapshot.endpoint_at(a)) {
            pick.served_by(endpoint);
        }
        let Some(&address) = pick.endpoints.first() else {
            return;
        };
        if let Some(time) = env.snapshot.record_outcome(address, status >= 500, env.now) {
            tracing::warn!(
                endpoint = %address,
                status,
                ejected_for = ?time,
                "endpoint ejected after failing requests; picks avoid it until then"
            );
        }
    }

    /// The response's token usage: from a JSON body once it has ended, from
    /// an SSE body as soon as the usage event has passed (`None` when the
    /// server reported none).
    pub fn usage(&self) -> Option<usage::Usage> {
        self.usage.or_else(|| self.sse_usage.usage())
    }

    /// Whether the response is a server-sent event stream.
    pub fn is_streaming_response(&self) -> bool {
        self.streaming && self.response_status.is_some()
    }

    /// Token-carrying events of a streamed response so far (the first one is
    /// the first token).
    pub fn token_events(&self) -> u64 {
        self.sse_usage.token_events()
    }

    /// Output tokens of a streamed response: the reported usage, else one per
    /// token-carrying event.
    pub fn streamed_tokens(&self) -> u64 {
        self.usage()
            .map_or(self.sse_usage.token_events(), |u| u.completion_tokens)
    }

    pub(super) fn on_response_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
        env: &Env<'_>,
    ) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.streaming {
            self.sse_usage.feed(chunk);
            if self.first_token.is_none() && self.sse_usage.token_events() > 0 {
                self.first_token = Some(env.now);
            }
            // Forward at once (but for a tail that may start a split model name).
            let chunk = match &mut self.restorer {
                Some(restorer) => restorer.feed(chunk, end_of_stream),
                None => chunk.to_vec(),
            };
            replies.push(Reply::ResponseBody {
                chunk,
                end_of_stream,
            });
        } else if self.response_passthrough {
            self.forward(chunk, end_of_stream, &mut replies);
        } else if self.buffer_response(chunk, env) {
            self.response_body.extend_from_slice(chunk);
            if end_of_stream {
                self.flush_response(true, &mut replies);
            }
        } else {
            // Too large to hold: what is buffered and this chunk go on now, and so will the
            // rest as it arrives (the model name is still restored on the way; the usage of
            // this response is given up).
            tracing::debug!(
                buffered = self.response_body.len(),
                limit = env.max_response_buffer_bytes,
                "response body too large to buffer; passing it through"
            );
            let held = std::mem::take(&mut self.response_body);
            self.forward(&held, false, &mut replies);
            drop(held);
            self.forward(chunk, end_of_stream, &mut replies);
            self.response_passthrough = true;
            if let Some(lease) = &mut self.lease {
                lease.release();
            }
        }
        if end_of_stream {
            self.finish(Ending::Completed, env.now);
        }
        replies
    }

    /// Response trailers end the response: a buffered body is sent first (it would be lost
    /// otherwise), then the trailers are answered.
    pub(super) fn on_response_trailers(&mut self, env: &Env<'_>) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.streaming || self.response_passthrough {
            // A tail held back as a possible split model name goes out now.
            if let Some(tail) = self.restorer.as_mut().map(|r| r.feed(&[], true))
                && !tail.is_empty()
            {
                replies.push(Reply::ResponseBody {
                    chunk: tail,
                    end_of_stream: false,
                });
            }
        } else if !self.response_body.is_empty() {
            self.flush_response(false, &mut replies);
        }
        replies.push(Reply::Trailers { response: true });
        self.finish(Ending::Completed, env.now);
        replies
    }

    /// Sends response bytes on as they come, with the client's model name restored.
    fn forward(&mut self, data: &[u8], end: bool, replies: &mut Vec<Reply>) {
        let restored = self.restorer.as_mut().map(|r| r.feed(data, end));
        let out = restored.as_deref().unwrap_or(data);
        if out.is_empty() && !end {
            return;
        }
        push_chunks(&[out], end, |chunk, end_of_stream| {
            replies.push(Reply::ResponseBody {
                chunk,
                end_of_stream,
            });
        });
    }

    /// Makes room for `chunk` in the response buffer within the per-response cap and the
    /// process-wide budget; `false` when it does not fit (the response passes through).
    fn buffer_response(&mut self, chunk: &[u8], env: &Env<'_>) -> bool {
        let needed = self.response_body.len() + chunk.len();
        if needed > env.max_response_buffer_bytes {
            return false;
        }
        if needed <= self.response_body.capacity() {
            return true;
        }
        let capacity = needed
            .max(self.response_body.capacity() * 2)
            .min(env.max_response_buffer_bytes);
        let lease = self.lease.get_or_insert_with(|| env.budget.lease());
        if lease.grow_to(capacity).is_err() {
            return false;
        }
        self.response_body
            .reserve_exact(capacity - self.response_body.len());
        true
    }

    /// Sends the buffered response body: usage read, the client's model name restored.
    fn flush_response(&mut self, end: bool, replies: &mut Vec<Reply>) {
        let body = std::mem::take(&mut self.response_body);
        self.usage = usage::from_json(&body);
        let restored = self.restorer.as_ref().and_then(|r| r.restore(&body));
        push_chunks(
            &[restored.as_deref().unwrap_or(&body)],
            end,
            |chunk, end_of_stream| {
                replies.push(Reply::ResponseBody {
                    chunk,
                    end_of_stream,
                });
            },
        );
        if let Some(lease) = &mut self.lease {
            lease.release();
        }
    }
}

/// Whether a `content-type` value names JSON (`application/json`, `…+json`), whatever its
/// parameters; NDJSON is a stream of documents, not one.
fn is_json(content_type: &[u8]) -> bool {
    let media = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let suffix = media.len().checked_sub(5).and_then(|at| media.get(at..));
    media.eq_ignore_ascii_case(b"application/json")
        || suffix.is_some_and(|s| s.eq_ignore_ascii_case(b"+json"))
}
