//! Mapping between envoy-types messages and the state machine's plain-Rust
//! [`crate::stream::Event`]s and [`Reply`]s. Everything here is pure, so it is tested without tonic.

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation as BodyChange;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Inbound;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Outbound;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, ImmediateResponse,
    ProcessingRequest, ProcessingResponse, StreamedBodyResponse, TrailersResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value};
use switchyard_api::protocol::{
    DESTINATION_ENDPOINT_KEY, DESTINATION_ENDPOINT_SERVED_KEY, DESTINATION_ENDPOINT_SUBSET_KEY,
    ENVOY_LB_METADATA_NAMESPACE, REQUEST_DROPPED_REASON_HEADER, SUBSET_HINT_METADATA_NAMESPACE,
};

use crate::refusal::Refusal;
use crate::stream::{HeadersReply, Reply, ServedEndpoint};

/// Most subset-hint entries kept (a pool rarely has more endpoints to name).
pub const MAX_SUBSET_ENTRIES: usize = 1024;

/// Longest subset-hint entry kept: a bracketed IPv6 address with a port is 47 bytes.
pub const MAX_SUBSET_ENTRY_BYTES: usize = 64;

/// The headers of a headers message as `(name, raw value)` pairs. Envoy sends `raw_value`;
/// `value` is read when an older proxy sends only that.
pub fn header_pairs(map: Option<&HeaderMap>) -> Vec<(&str, &[u8])> {
    map.map(|m| {
        m.headers
            .iter()
            .map(|h| {
                let value = if h.raw_value.is_empty() {
                    h.value.as_bytes()
                } else {
                    &h.raw_value[..]
                };
                (h.key.as_str(), value)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The subset hint (`envoy.lb.subset_hint` → `x-gateway-destination-endpoint-subset`), if the
/// key is present: a list of strings as upstream sends it, or one comma-separated string (as
/// lwepp accepts, and as Envoy's header-to-metadata filter writes it). Non-string list items
/// are ignored, so a malformed hint narrows the choice and can only give a 503.
///
/// Only the request's *filter metadata* is read, which the gateway's own filters write; a
/// client header of the same name is never consulted (L16). The hint is still bounded: at
/// most [`MAX_SUBSET_ENTRIES`] entries of at most [`MAX_SUBSET_ENTRY_BYTES`] bytes each
/// (longer ones are dropped, narrowing the choice as any malformed entry does).
pub fn subset_hint(request: &ProcessingRequest) -> Option<Vec<String>> {
    let value = request
        .metadata_context
        .as_ref()?
        .filter_metadata
        .get(SUBSET_HINT_METADATA_NAMESPACE)?
        .fields
        .get(DESTINATION_ENDPOINT_SUBSET_KEY)?;
    let entries = match &value.kind {
        Some(Kind::ListValue(list)) => list
            .values
            .iter()
            .filter_map(|v| match &v.kind {
                Some(Kind::StringValue(s)) => Some(s.trim()),
                _ => None,
            })
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBSET_ENTRY_BYTES)
            .take(MAX_SUBSET_ENTRIES)
            .map(str::to_owned)
            .collect(),
        Some(Kind::StringValue(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBSET_ENTRY_BYTES)
            .take(MAX_SUBSET_ENTRIES)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Some(entries)
}

/// The served endpoint the proxy reports in a response message's metadata
/// (`envoy.lb` → `x-gateway-destination-endpoint-served`). A value that is not
/// a string counts as missing, as upstream's verifier treats it.
pub fn served_endpoint(request: &ProcessingRequest) -> ServedEndpoint<'_> {
    let Some(lb) = request
        .metadata_context
        .as_ref()
        .and_then(|m| m.filter_metadata.get(ENVOY_LB_METADATA_NAMESPACE))
    else {
        return ServedEndpoint::NoLbMetadata;
    };
    match lb
        .fields
        .get(DESTINATION_ENDPOINT_SERVED_KEY)
        .and_then(|v| v.kind.as_ref())
    {
        Some(Kind::StringValue(endpoint)) => ServedEndpoint::Reported(endpoint),
        _ => ServedEndpoint::NoServedKey,
    }
}

/// Which phase an inbound message belongs to (for logs and metrics).
pub fn phase(request: &ProcessingRequest) -> &'static str {
    match &request.request {
        Some(Inbound::RequestHeaders(_)) => "request_headers",
        Some(Inbound::RequestBody(_)) => "request_body",
        Some(Inbound::RequestTrailers(_)) => "request_trailers",
        Some(Inbound::ResponseHeaders(_)) => "response_headers",
        Some(Inbound::ResponseBody(_)) => "response_body",
        Some(Inbound::ResponseTrailers(_)) => "response_trailers",
        None => "empty",
    }
}

fn set_header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            raw_value: value.as_bytes().to_vec(),
            ..HeaderValue::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn string_value(s: String) -> Value {
    Value {
        kind: Some(Kind::StringValue(s)),
    }
}

fn headers_response(reply: HeadersReply) -> (HeadersResponse, Option<Struct>) {
    let HeadersReply {
        set_headers,
        remove_headers,
        clear_route_cache,
        destination_metadata,
    } = reply;
    let mutation =
        (!set_headers.is_empty() || !remove_headers.is_empty()).then(|| HeaderMutation {
            set_headers: set_headers.iter().map(|(k, v)| set_header(k, v)).collect(),
            remove_headers,
        });
    let metadata = destination_metadata.map(|destination| {
        let inner = Struct {
            fields: [(
                DESTINATION_ENDPOINT_KEY.to_owned(),
                string_value(destination),
            )]
            .into(),
        };
        Struct {
            fields: [(
                ENVOY_LB_METADATA_NAMESPACE.to_owned(),
                Value {
                    kind: Some(Kind::StructValue(inner)),
                },
            )]
            .into(),
        }
    });
    let response = HeadersResponse {
        response: Some(CommonResponse {
            header_mutation: mutation,
            clear_route_cache,
            ..CommonResponse::default()
        }),
    };
    (response, metadata)
}

fn streamed_body(chunk: Vec<u8>, end_of_stream: bool) -> BodyResponse {
    BodyResponse {
        response: Some(CommonResponse {
            body_mutation: Some(BodyMutation {
                mutation: Some(BodyChange::StreamedResponse(StreamedBodyResponse {
                    body: chunk,
                    end_of_stream,
                    ..StreamedBodyResponse::default()
                })),
            }),
            ..CommonResponse::default()
        }),
    }
}

/// A local reply ending the request: the refusal's status, a JSON content type, the
/// dropped-reason header and the OpenAI-style body, all from the one [`Refusal`].
pub fn refusal_response(refusal: &Refusal) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(Outbound::ImmediateResponse(ImmediateResponse {
            status: Some(HttpStatus {
                code: i32::from(refusal.status()),
            }),
            headers: Some(HeaderMutation {
                set_headers: vec![
                    set_header("content-type", "application/json"),
                    set_header(REQUEST_DROPPED_REASON_HEADER, refusal.reason),
                ],
                remove_headers: Vec::new(),
            }),
            body: refusal.json_body(),
            details: format!("epp_{}", refusal.reason),
            ..ImmediateResponse::default()
        })),
        ..ProcessingResponse::default()
    }
}

/// One reply as the message Envoy expects.
pub fn to_response(reply: Reply) -> ProcessingResponse {
    let (response, dynamic_metadata) = match reply {
        Reply::RequestHeaders(h) => {
            let (headers, metadata) = headers_response(h);
            (Outbound::RequestHeaders(headers), metadata)
        }
        Reply::ResponseHeaders(h) => {
            let (headers, metadata) = headers_response(h);
            (Outbound::ResponseHeaders(headers), metadata)
        }
        Reply::RequestBody {
            chunk,
            end_of_stream,
        } => (
            Outbound::RequestBody(streamed_body(chunk, end_of_stream)),
            None,
        ),
        Reply::ResponseBody {
            chunk,
            end_of_stream,
        } => (
            Outbound::ResponseBody(streamed_body(chunk, end_of_stream)),
            None,
        ),
        Reply::Trailers { response } => {
            let trailers = TrailersResponse::default();
            if response {
                (Outbound::ResponseTrailers(trailers), None)
            } else {
                (Outbound::RequestTrailers(trailers), None)
            }
        }
        Reply::Refuse(refusal) => return refusal_response(&refusal),
    };
    ProcessingResponse {
        response: Some(response),
        dynamic_metadata,
        ..ProcessingResponse::default()
    }
}

#[cfg(test)]
mod tests;
