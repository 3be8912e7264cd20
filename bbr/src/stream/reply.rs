//! Builders for the ext_proc answers BBR sends.

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation as BodyChange;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, ImmediateResponse,
    ProcessingResponse, StreamedBodyResponse, TrailersResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use switchyard_api::protocol::MODEL_NAME_HEADER;

use super::MAX_CHUNK_BYTES;
use crate::adapters::BaseModelIndex;
use crate::config::RouterConfig;
use crate::policy::Rejection;

/// A header mutation for the request.
pub(super) type Mutation = HeaderMutation;

/// A header set that replaces any existing value. `raw_value` because Envoy ignores `value`
/// when both are present and newer Envoys require raw values from ext_proc.
fn set(key: &str, value: &[u8]) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            raw_value: value.to_vec(),
            ..HeaderValue::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

/// The owned headers whose bit is set in `mask`.
fn spoofed<'a>(owned: &'a [&'a str], mask: u32) -> impl Iterator<Item = &'a str> {
    owned
        .iter()
        .enumerate()
        .filter(move |(i, _)| *i < 32 && mask & (1 << i) != 0)
        .map(|(_, name)| *name)
}

/// Removal of the client-supplied copies of BBR's headers, if there are any.
pub(super) fn removal(owned: &[&str], mask: u32) -> Option<Mutation> {
    (mask != 0).then(|| HeaderMutation {
        remove_headers: spoofed(owned, mask).map(str::to_string).collect(),
        ..HeaderMutation::default()
    })
}

/// The routing headers for `model`, the removal of spoofed copies of the headers not set, and
/// the body length when it is known.
pub(super) fn routing(
    config: &RouterConfig,
    index: &BaseModelIndex,
    model: &str,
    mask: u32,
    content_length: Option<usize>,
) -> Mutation {
    let mut set_headers = Vec::with_capacity(4);
    set_headers.push(set(&config.model_header, model.as_bytes()));
    if config.set_upstream_model_header {
        set_headers.push(set(MODEL_NAME_HEADER, model.as_bytes()));
    }
    if let Some(base) = index.base_of(model) {
        set_headers.push(set(&config.base_model_header, base.as_bytes()));
    }
    if let Some(length) = content_length {
        set_headers.push(set("content-length", length.to_string().as_bytes()));
    }
    // A set header already replaces the client's copies; remove only the others, so the
    // result does not depend on the order in which Envoy applies removals and sets.
    let owned = config.owned_headers();
    let remove_headers = spoofed(&owned, mask)
        .filter(|name| {
            !set_headers
                .iter()
                .any(|h| h.header.as_ref().is_some_and(|h| h.key == *name))
        })
        .map(str::to_string)
        .collect();
    HeaderMutation {
        set_headers,
        remove_headers,
    }
}

fn common(mutation: Option<Mutation>) -> CommonResponse {
    CommonResponse {
        // Any change to routing headers must re-run route selection.
        clear_route_cache: mutation.is_some(),
        header_mutation: mutation,
        ..CommonResponse::default()
    }
}

fn response(response: Response) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(response),
        ..ProcessingResponse::default()
    }
}

/// The request-headers answer, with an optional mutation (and then a route-cache clear).
pub(super) fn request_headers(mutation: Option<Mutation>) -> ProcessingResponse {
    response(Response::RequestHeaders(HeadersResponse {
        response: mutation.map(|m| common(Some(m))),
    }))
}

/// FULL_DUPLEX_STREAMED: the held headers answer carrying the routing headers.
pub(super) fn request_headers_routed(mutation: Mutation) -> ProcessingResponse {
    request_headers(Some(mutation))
}

/// FULL_DUPLEX_STREAMED: the held headers answer for a body without model (allowed): spoofed
/// copies removed, length restored.
pub(super) fn request_headers_passed(
    owned: &[&str],
    mask: u32,
    content_length: Option<usize>,
) -> ProcessingResponse {
    let mut mutation = removal(owned, mask).unwrap_or_default();
    if let Some(length) = content_length {
        mutation
            .set_headers
            .push(set("content-length", length.to_string().as_bytes()));
    }
    let changed = mask != 0;
    let mutation = (!mutation.set_headers.is_empty() || changed).then_some(mutation);
    response(Response::RequestHeaders(HeadersResponse {
        response: Some(CommonResponse {
            clear_route_cache: changed,
            header_mutation: mutation,
            ..CommonResponse::default()
        }),
    }))
}

/// BUFFERED: the body answer, carrying the routing headers when there are any.
pub(super) fn request_body_buffered(mutation: Option<Mutation>) -> ProcessingResponse {
    response(Response::RequestBody(BodyResponse {
        response: mutation.map(|m| common(Some(m))),
    }))
}

/// FULL_DUPLEX_STREAMED: one chunk of the echoed request body.
pub(super) fn streamed_chunk(body: Vec<u8>, end_of_stream: bool) -> ProcessingResponse {
    response(Response::RequestBody(streamed_body(body, end_of_stream)))
}

fn streamed_body(body: Vec<u8>, end_of_stream: bool) -> BodyResponse {
    BodyResponse {
        response: Some(CommonResponse {
            body_mutation: Some(BodyMutation {
                mutation: Some(BodyChange::StreamedResponse(StreamedBodyResponse {
                    body,
                    end_of_stream,
                    ..StreamedBodyResponse::default()
                })),
            }),
            ..CommonResponse::default()
        }),
    }
}

/// Echoes the body as received, splitting chunks longer than [`MAX_CHUNK_BYTES`]; the last
/// piece carries `end_of_stream` when the body ended with it (not when trailers follow).
pub(super) fn echo_body(chunks: Vec<Vec<u8>>, by_eos: bool, out: &mut Vec<ProcessingResponse>) {
    let count = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let last_chunk = i + 1 == count;
        if chunk.len() <= MAX_CHUNK_BYTES {
            // The common case: the chunk moves into the answer without a copy.
            out.push(streamed_chunk(chunk, last_chunk && by_eos));
            continue;
        }
        let pieces = chunk.len().div_ceil(MAX_CHUNK_BYTES);
        for (j, piece) in chunk.chunks(MAX_CHUNK_BYTES).enumerate() {
            let last = last_chunk && j + 1 == pieces;
            out.push(streamed_chunk(piece.to_vec(), last && by_eos));
        }
    }
}

/// The error answered to the client instead of forwarding the request.
pub(super) fn immediate(rejection: &Rejection) -> ProcessingResponse {
    let headers = HeaderMutation {
        set_headers: vec![set("content-type", b"application/json")],
        ..HeaderMutation::default()
    };
    response(Response::ImmediateResponse(ImmediateResponse {
        status: Some(HttpStatus {
            code: i32::from(rejection.reason.status()),
        }),
        headers: Some(headers),
        body: rejection.body(),
        // Shows in Envoy's %RESPONSE_CODE_DETAILS%: no spaces allowed.
        details: format!("bbr_{}", rejection.reason.code()),
        ..ImmediateResponse::default()
    }))
}

/// The request-trailers answer (trailers pass unchanged).
pub(super) fn request_trailers() -> ProcessingResponse {
    response(Response::RequestTrailers(TrailersResponse::default()))
}

/// The response-headers answer (pass through).
pub(super) fn response_headers() -> ProcessingResponse {
    response(Response::ResponseHeaders(HeadersResponse::default()))
}

/// The response-body answer: echoed in FULL_DUPLEX_STREAMED (which requires it), otherwise
/// an empty answer that leaves the body unchanged.
pub(super) fn response_body(
    full_duplex: bool,
    body: Vec<u8>,
    end_of_stream: bool,
) -> ProcessingResponse {
    let answer = if full_duplex {
        streamed_body(body, end_of_stream)
    } else {
        BodyResponse::default()
    };
    response(Response::ResponseBody(answer))
}

/// The response-trailers answer (pass through).
pub(super) fn response_trailers() -> ProcessingResponse {
    response(Response::ResponseTrailers(TrailersResponse::default()))
}
