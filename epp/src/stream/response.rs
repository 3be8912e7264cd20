//! The response path of a [`RequestStream`]: status and SSE detection on the
//! headers, then the body passed through (SSE unbuffered, JSON at its end) with
//! a rewritten model name put back to the one the client asked for.
//!
//! The proxy reports which endpoint served the request in the response
//! headers' metadata (docs/upstream.md#epp-protocol, "Served endpoint"); with upstream's
//! `destination-endpoint-served-verifier` configured it is echoed to the
//! client, which is how upstream's `GatewayDestinationEndpointServed`
//! conformance test checks the gateway.

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
        if get("content-type").is_some_and(|v| v.starts_with(b"text/event-stream")) {
            self.streaming = true;
        }
        self.phase = Phase::ResponseBody;
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
        let restore = |bytes: &[u8]| match (&self.labels.client_model, &self.labels.target_model) {
            (Some(client), Some(target)) if client != target => {
                rewrite::restore_model(bytes, target, client)
            }
            _ => None,
        };
        let mut replies = Vec::new();
        if self.streaming {
            self.sse_usage.feed(chunk);
            if self.first_token.is_none() && self.sse_usage.token_events() > 0 {
                self.first_token = Some(env.now);
            }
            // Forward at once; a model name split across two chunks is missed.
            let chunk = restore(chunk).unwrap_or_else(|| chunk.to_vec());
            replies.push(Reply::ResponseBody {
                chunk,
                end_of_stream,
            });
        } else {
            self.response_body.extend_from_slice(chunk);
            if end_of_stream {
                let body = std::mem::take(&mut self.response_body);
                self.usage = usage::from_json(&body);
                let body = restore(&body).unwrap_or(body);
                push_chunks(&body, |chunk, end_of_stream| {
                    replies.push(Reply::ResponseBody {
                        chunk,
                        end_of_stream,
                    });
                });
            }
        }
        if end_of_stream {
            self.finish(Ending::Completed, env.now);
        }
        replies
    }
}
