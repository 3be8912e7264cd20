//! The protocol, message by message, in both body modes — no tonic, no Envoy. Fixtures and
//! readable views of the answers live here; the cases are split by phase.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation as BodyChange;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    CommonResponse, HttpBody, HttpHeaders, HttpTrailers, ProcessingRequest, ProcessingResponse,
    ProtocolConfiguration,
};

use super::*;
use crate::adapters::{BaseModelIndex, Mapping};

// === fixtures ===

fn config() -> RouterConfig {
    RouterConfig::default()
}

fn stream(config: RouterConfig) -> RequestStream {
    RequestStream::new(Arc::new(config), Arc::new(BaseModelIndex::default()))
}

fn with_protocol(mode: BodySendMode, request: Request) -> ProcessingRequest {
    ProcessingRequest {
        protocol_config: Some(ProtocolConfiguration {
            request_body_mode: mode as i32,
            ..ProtocolConfiguration::default()
        }),
        request: Some(request),
        ..ProcessingRequest::default()
    }
}

fn headers_msg(headers: &[(&str, &str)], end_of_stream: bool) -> Request {
    Request::RequestHeaders(HttpHeaders {
        headers: Some(HeaderMap {
            headers: headers
                .iter()
                .map(|(k, v)| HeaderValue {
                    key: k.to_string(),
                    raw_value: v.as_bytes().to_vec(),
                    ..HeaderValue::default()
                })
                .collect(),
        }),
        end_of_stream,
        ..HttpHeaders::default()
    })
}

fn post_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        ("content-type", "application/json"),
    ]
}

fn body_msg(body: &[u8], end_of_stream: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestBody(HttpBody {
            body: body.to_vec(),
            end_of_stream,
            ..HttpBody::default()
        })),
        ..ProcessingRequest::default()
    }
}

fn trailers_msg() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestTrailers(HttpTrailers::default())),
        ..ProcessingRequest::default()
    }
}

fn send(stream: &mut RequestStream, message: ProcessingRequest) -> Vec<ProcessingResponse> {
    let mut out = Vec::new();
    stream.on_message(message, &mut out).unwrap();
    out
}

/// Opens a request in `mode` and returns what the headers produced.
fn open(
    stream: &mut RequestStream,
    mode: BodySendMode,
    headers: &[(&str, &str)],
) -> Vec<ProcessingResponse> {
    send(stream, with_protocol(mode, headers_msg(headers, false)))
}

// === views of the answers ===

/// A readable summary of one answer.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Headers(Option<Change>),
    Body(Option<Change>),
    Chunk { len: usize, eos: bool },
    Trailers,
    Immediate { status: i32, code: String },
    Other,
}

#[derive(Debug, PartialEq, Eq)]
struct Change {
    set: BTreeMap<String, String>,
    remove: Vec<String>,
    clear_route_cache: bool,
}

fn change(common: &Option<CommonResponse>) -> Option<Change> {
    let common = common.as_ref()?;
    let mutation = common.header_mutation.clone().unwrap_or_default();
    let set = mutation
        .set_headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .map(|h| {
            (
                h.key.clone(),
                String::from_utf8(h.raw_value.clone()).unwrap(),
            )
        })
        .collect();
    Some(Change {
        set,
        remove: mutation.remove_headers.clone(),
        clear_route_cache: common.clear_route_cache,
    })
}

fn seen(answer: &ProcessingResponse) -> Seen {
    match &answer.response {
        Some(Response::RequestHeaders(h)) => Seen::Headers(change(&h.response)),
        Some(Response::RequestBody(b)) => {
            let streamed = b
                .response
                .as_ref()
                .and_then(|c| c.body_mutation.as_ref())
                .and_then(|m| m.mutation.as_ref());
            match streamed {
                Some(BodyChange::StreamedResponse(s)) => Seen::Chunk {
                    len: s.body.len(),
                    eos: s.end_of_stream,
                },
                _ => Seen::Body(change(&b.response)),
            }
        }
        Some(Response::RequestTrailers(_)) => Seen::Trailers,
        Some(Response::ImmediateResponse(i)) => {
            let body: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
            Seen::Immediate {
                status: i.status.as_ref().map_or(0, |s| s.code),
                code: body["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        _ => Seen::Other,
    }
}

fn seen_all(answers: &[ProcessingResponse]) -> Vec<Seen> {
    answers.iter().map(seen).collect()
}

fn routed(pairs: &[(&str, &str)], remove: &[&str]) -> Option<Change> {
    Some(Change {
        set: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
        clear_route_cache: true,
    })
}

fn echoed(answers: &[ProcessingResponse]) -> Vec<u8> {
    answers
        .iter()
        .filter_map(|a| match &a.response {
            Some(Response::RequestBody(b)) => match b
                .response
                .as_ref()?
                .body_mutation
                .as_ref()?
                .mutation
                .as_ref()?
            {
                BodyChange::StreamedResponse(s) => Some(s.body.clone()),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect()
}

const BODY: &[u8] = br#"{"model":"llama","messages":[{"role":"user","content":"hi"}]}"#;

mod buffered;
mod full_duplex;
mod limits;
mod modes;
