//! The protocol, message by message, in both body modes — no tonic, no Envoy.

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

fn stream(config: RouterConfig) -> Stream {
    Stream::new(Arc::new(config), Arc::new(BaseModelIndex::default()))
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

fn send(stream: &mut Stream, message: ProcessingRequest) -> Vec<ProcessingResponse> {
    let mut out = Vec::new();
    stream.on_message(message, &mut out).unwrap();
    out
}

/// Opens a request in `mode` and returns what the headers produced.
fn open(
    stream: &mut Stream,
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

// === bodiless requests ===

#[test]
fn get_passes_untouched() {
    let mut s = stream(config());
    let out = send(
        &mut s,
        with_protocol(
            BodySendMode::Buffered,
            headers_msg(&[(":method", "GET")], true),
        ),
    );
    assert_eq!(seen_all(&out), [Seen::Headers(None)]);
    let summary = s.take_summary().unwrap();
    assert_eq!(summary.outcome, Outcome::NoBody);
    assert_eq!(s.take_summary(), None);
}

#[test]
fn get_with_spoofed_headers_has_them_removed() {
    let mut s = stream(config());
    let headers = [
        (":method", "GET"),
        ("X-Gateway-Inference-Model", "victim-pool"),
        ("x-gateway-model-name", "victim"),
    ];
    let out = send(
        &mut s,
        with_protocol(
            BodySendMode::FullDuplexStreamed,
            headers_msg(&headers, true),
        ),
    );
    assert_eq!(
        seen_all(&out),
        [Seen::Headers(Some(Change {
            set: BTreeMap::new(),
            remove: vec![
                "x-gateway-inference-model".into(),
                "x-gateway-model-name".into()
            ],
            clear_route_cache: true,
        }))]
    );
    assert_eq!(s.take_summary().unwrap().spoofed_removed, 2);
}

// === BUFFERED ===

#[test]
fn buffered_answers_headers_at_once_and_routes_on_the_body() {
    let mut s = stream(config());
    assert_eq!(
        seen_all(&open(&mut s, BodySendMode::Buffered, &post_headers())),
        [Seen::Headers(None)]
    );
    let out = send(&mut s, body_msg(BODY, true));
    assert_eq!(
        seen_all(&out),
        [Seen::Body(routed(
            &[("x-gateway-inference-model", "llama")],
            &[]
        ))]
    );
    let summary = s.take_summary().unwrap();
    assert_eq!(summary.outcome, Outcome::Routed);
    assert_eq!(summary.model.as_deref(), Some("llama"));
    assert_eq!(summary.body_bytes, BODY.len());
    assert!(summary.extraction.is_some());
    assert_eq!(summary.mode, BodyMode::Buffered);
}

#[test]
fn buffered_removes_spoofed_headers_before_routing() {
    let mut s = stream(config());
    let mut headers = post_headers();
    headers.push(("x-gateway-inference-model", "other"));
    headers.push(("x-gateway-base-model-name", "other-base"));
    let out = open(&mut s, BodySendMode::Buffered, &headers);
    assert_eq!(
        seen_all(&out),
        [Seen::Headers(Some(Change {
            set: BTreeMap::new(),
            remove: vec![
                "x-gateway-inference-model".into(),
                "x-gateway-base-model-name".into()
            ],
            clear_route_cache: true,
        }))]
    );
    let out = send(&mut s, body_msg(BODY, true));
    assert_eq!(
        seen_all(&out),
        [Seen::Body(routed(
            &[("x-gateway-inference-model", "llama")],
            &[]
        ))]
    );
    assert_eq!(s.take_summary().unwrap().spoofed_removed, 2);
}

#[test]
fn upstream_header_and_base_model_are_set_when_configured() {
    let mapping = Mapping {
        base_model: "llama".into(),
        adapters: vec!["food-review".into()],
    };
    let (index, _) = BaseModelIndex::build([("test", &mapping)]);
    let config = RouterConfig {
        set_upstream_model_header: true,
        ..RouterConfig::default()
    };
    let mut s = Stream::new(Arc::new(config), Arc::new(index));
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let out = send(&mut s, body_msg(br#"{"model":"food-review"}"#, true));
    assert_eq!(
        seen_all(&out),
        [Seen::Body(routed(
            &[
                ("x-gateway-inference-model", "food-review"),
                ("x-gateway-model-name", "food-review"),
                ("x-gateway-base-model-name", "llama"),
            ],
            &[]
        ))]
    );
}

#[test]
fn buffered_bad_bodies_get_400_with_a_code() {
    for (body, code) in [
        (&b"{not json"[..], "invalid_json"),
        (b"{}", "missing_model"),
        (br#"{"model":""}"#, "empty_model"),
        (br#"{"model":42}"#, "model_not_string"),
        (br#"{"model":"a","model":"b"}"#, "duplicate_model"),
        (b"[1]", "invalid_json"),
    ] {
        let mut s = stream(config());
        open(&mut s, BodySendMode::Buffered, &post_headers());
        let out = send(&mut s, body_msg(body, true));
        assert_eq!(
            seen_all(&out),
            [Seen::Immediate {
                status: 400,
                code: code.into()
            }],
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(matches!(
            s.take_summary().unwrap().outcome,
            Outcome::Rejected(_)
        ));
    }
}

#[test]
fn immediate_response_is_json_with_details() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let out = send(&mut s, body_msg(b"{}", true));
    let Some(Response::ImmediateResponse(i)) = &out[0].response else {
        panic!("expected an immediate response")
    };
    assert_eq!(i.details, "bbr_missing_model");
    let content_type = &i.headers.as_ref().unwrap().set_headers[0];
    assert_eq!(content_type.header.as_ref().unwrap().key, "content-type");
    let body: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "model");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"model\"")
    );
}

#[test]
fn buffered_missing_model_passes_when_allowed() {
    let mut s = stream(RouterConfig {
        allow_missing_model: true,
        ..RouterConfig::default()
    });
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let out = send(&mut s, body_msg(br#"{"messages":[]}"#, true));
    assert_eq!(seen_all(&out), [Seen::Body(None)]);
    assert_eq!(
        s.take_summary().unwrap().outcome,
        Outcome::PassedWithoutModel
    );
}

#[test]
fn buffered_oversize_body_is_413() {
    let mut s = stream(RouterConfig {
        max_body_bytes: 10,
        ..RouterConfig::default()
    });
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let out = send(&mut s, body_msg(BODY, true));
    assert_eq!(
        seen_all(&out),
        [Seen::Immediate {
            status: 413,
            code: "request_too_large".into()
        }]
    );
}

#[test]
fn buffered_body_then_trailers() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let out = send(&mut s, body_msg(BODY, false));
    assert!(matches!(seen(&out[0]), Seen::Body(Some(_))));
    assert_eq!(seen_all(&send(&mut s, trailers_msg())), [Seen::Trailers]);
}

#[test]
fn buffered_headers_then_only_trailers_is_bodiless() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::Buffered, &post_headers());
    assert_eq!(seen_all(&send(&mut s, trailers_msg())), [Seen::Trailers]);
    assert_eq!(s.take_summary().unwrap().outcome, Outcome::NoBody);
}

// === FULL_DUPLEX_STREAMED ===

#[test]
fn full_duplex_holds_headers_until_the_body_ends() {
    let mut s = stream(config());
    assert!(open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers()).is_empty());
    let (first, second) = BODY.split_at(15); // splits inside "model"'s value
    assert!(send(&mut s, body_msg(first, false)).is_empty());
    let out = send(&mut s, body_msg(second, true));
    let length = BODY.len().to_string();
    assert_eq!(
        seen_all(&out),
        [
            Seen::Headers(routed(
                &[
                    ("x-gateway-inference-model", "llama"),
                    ("content-length", &length)
                ],
                &[]
            )),
            Seen::Chunk {
                len: first.len(),
                eos: false
            },
            Seen::Chunk {
                len: second.len(),
                eos: true
            },
        ]
    );
    assert_eq!(echoed(&out), BODY);
    assert_eq!(s.take_summary().unwrap().mode, BodyMode::FullDuplexStreamed);
}

#[test]
fn full_duplex_big_body_is_echoed_in_chunks_of_at_most_62000_bytes() {
    let filler = "x".repeat(3_000_000);
    let body = format!(r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"big"}}"#);
    let mut s = stream(config());
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(100_000).collect();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(send(&mut s, body_msg(piece, i + 1 == pieces.len())));
    }
    let views = seen_all(&out);
    assert!(
        matches!(&views[0], Seen::Headers(Some(c)) if c.set["x-gateway-inference-model"] == "big")
    );
    let chunks = &views[1..];
    assert!(
        chunks
            .iter()
            .all(|c| matches!(c, Seen::Chunk { len, .. } if *len <= MAX_CHUNK_BYTES))
    );
    let eos: Vec<bool> = chunks
        .iter()
        .map(|c| matches!(c, Seen::Chunk { eos: true, .. }))
        .collect();
    assert_eq!(eos.iter().filter(|e| **e).count(), 1);
    assert_eq!(eos.last(), Some(&true));
    assert_eq!(echoed(&out), body.as_bytes());
}

#[test]
fn full_duplex_request_ending_in_trailers_is_released_by_them() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    assert!(send(&mut s, body_msg(BODY, false)).is_empty());
    let out = send(&mut s, trailers_msg());
    assert_eq!(
        seen_all(&out),
        [
            // No content-length: with trailers the request stays chunked.
            Seen::Headers(routed(&[("x-gateway-inference-model", "llama")], &[])),
            Seen::Chunk {
                len: BODY.len(),
                eos: false
            },
            Seen::Trailers,
        ]
    );
}

#[test]
fn full_duplex_trailers_without_body_pass() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    assert_eq!(
        seen_all(&send(&mut s, trailers_msg())),
        [Seen::Headers(None), Seen::Trailers]
    );
    assert_eq!(s.take_summary().unwrap().outcome, Outcome::NoBody);
}

#[test]
fn full_duplex_empty_body_passes_with_its_end_of_stream() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    let out = send(&mut s, body_msg(b"", true));
    assert_eq!(
        seen_all(&out),
        [Seen::Headers(None), Seen::Chunk { len: 0, eos: true }]
    );
}

#[test]
fn full_duplex_overwrites_and_removes_spoofed_headers_in_one_answer() {
    let mut s = stream(config());
    let mut headers = post_headers();
    headers.push(("x-gateway-inference-model", "victim"));
    headers.push(("x-gateway-model-name", "victim"));
    open(&mut s, BodySendMode::FullDuplexStreamed, &headers);
    let out = send(&mut s, body_msg(BODY, true));
    let length = BODY.len().to_string();
    assert_eq!(
        seen(&out[0]),
        // The model header is overwritten (set), the other spoofed one removed.
        Seen::Headers(routed(
            &[
                ("x-gateway-inference-model", "llama"),
                ("content-length", &length)
            ],
            &["x-gateway-model-name"]
        ))
    );
}

#[test]
fn full_duplex_rejections_stop_the_request() {
    let mut s = stream(config());
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    send(&mut s, body_msg(b"{\"model\":", false));
    let out = send(&mut s, body_msg(b"5}", true));
    assert_eq!(
        seen_all(&out),
        [Seen::Immediate {
            status: 400,
            code: "model_not_string".into()
        }]
    );
    // Late messages after the immediate response are not answered out of turn.
    assert!(send(&mut s, trailers_msg()).is_empty());
}

#[test]
fn full_duplex_oversize_is_413_at_the_chunk_that_crosses_the_limit() {
    let mut s = stream(RouterConfig {
        max_body_bytes: 100,
        ..RouterConfig::default()
    });
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    assert!(send(&mut s, body_msg(&[b' '; 60], false)).is_empty());
    let out = send(&mut s, body_msg(&[b' '; 60], false));
    assert_eq!(
        seen_all(&out),
        [Seen::Immediate {
            status: 413,
            code: "request_too_large".into()
        }]
    );
    assert!(send(&mut s, body_msg(&[b' '; 60], true)).is_empty());
    let summary = s.take_summary().unwrap();
    assert_eq!(summary.outcome, Outcome::Rejected(Reason::BodyTooLarge));
    assert_eq!(summary.body_bytes, 120);
}

#[test]
fn full_duplex_missing_model_passes_when_allowed() {
    let mut s = stream(RouterConfig {
        allow_missing_model: true,
        ..RouterConfig::default()
    });
    open(&mut s, BodySendMode::FullDuplexStreamed, &post_headers());
    let body = br#"{"input":"x"}"#;
    let out = send(&mut s, body_msg(body, true));
    let length = body.len().to_string();
    assert_eq!(
        seen_all(&out),
        [
            Seen::Headers(Some(Change {
                set: [("content-length".to_string(), length)].into(),
                remove: vec![],
                clear_route_cache: false,
            })),
            Seen::Chunk {
                len: body.len(),
                eos: true
            },
        ]
    );
}

// === modes and protocol errors ===

#[test]
fn mode_comes_from_envoy_or_the_configured_default() {
    // No protocol_config: the configured default applies.
    let mut s = stream(RouterConfig {
        default_body_mode: BodyMode::FullDuplexStreamed,
        ..RouterConfig::default()
    });
    let first = ProcessingRequest {
        request: Some(headers_msg(&post_headers(), false)),
        ..ProcessingRequest::default()
    };
    assert!(
        send(&mut s, first).is_empty(),
        "headers held as in FULL_DUPLEX_STREAMED"
    );
    // Envoy's announcement wins over the default.
    let mut s = stream(RouterConfig {
        default_body_mode: BodyMode::FullDuplexStreamed,
        ..RouterConfig::default()
    });
    assert_eq!(
        open(&mut s, BodySendMode::Buffered, &post_headers()).len(),
        1
    );
}

#[test]
fn unusable_modes_fail_the_stream_only_when_a_body_comes() {
    for mode in [
        BodySendMode::Streamed,
        BodySendMode::BufferedPartial,
        BodySendMode::None,
    ] {
        let mut s = stream(config());
        let mut out = Vec::new();
        let err = s
            .on_message(
                with_protocol(mode, headers_msg(&post_headers(), false)),
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedBodyMode { .. }), "{err}");
        assert!(out.is_empty());
        // A GET in the same configuration is fine.
        let mut s = stream(config());
        let out = send(
            &mut s,
            with_protocol(mode, headers_msg(&[(":method", "GET")], true)),
        );
        assert_eq!(seen_all(&out), [Seen::Headers(None)]);
    }
}

#[test]
fn out_of_order_messages_are_protocol_errors() {
    let mut out = Vec::new();
    let mut s = stream(config());
    assert!(matches!(
        s.on_message(body_msg(BODY, true), &mut out),
        Err(Error::Protocol(_))
    ));
    let mut s = stream(config());
    assert!(matches!(
        s.on_message(trailers_msg(), &mut out),
        Err(Error::Protocol(_))
    ));
    let mut s = stream(config());
    open(&mut s, BodySendMode::Buffered, &post_headers());
    let again = with_protocol(BodySendMode::Buffered, headers_msg(&post_headers(), false));
    assert!(matches!(
        s.on_message(again, &mut out),
        Err(Error::Protocol(_))
    ));
    let mut s = stream(config());
    open(&mut s, BodySendMode::Buffered, &post_headers());
    send(&mut s, body_msg(BODY, true));
    assert!(matches!(
        s.on_message(body_msg(BODY, true), &mut out),
        Err(Error::Protocol(_))
    ));
}

#[test]
fn empty_message_needs_no_answer() {
    let mut s = stream(config());
    assert!(send(&mut s, ProcessingRequest::default()).is_empty());
}

// === response path ===

#[test]
fn response_events_pass_through() {
    let mut s = stream(config());
    send(
        &mut s,
        with_protocol(
            BodySendMode::Buffered,
            headers_msg(&[(":method", "GET")], true),
        ),
    );
    let response_headers = ProcessingRequest {
        request: Some(Request::ResponseHeaders(HttpHeaders::default())),
        ..ProcessingRequest::default()
    };
    let out = send(&mut s, response_headers);
    assert!(matches!(&out[0].response, Some(Response::ResponseHeaders(h)) if h.response.is_none()));
    let response_body = ProcessingRequest {
        request: Some(Request::ResponseBody(HttpBody {
            body: b"data".to_vec(),
            end_of_stream: true,
            ..HttpBody::default()
        })),
        ..ProcessingRequest::default()
    };
    let out = send(&mut s, response_body);
    assert!(matches!(&out[0].response, Some(Response::ResponseBody(b)) if b.response.is_none()));
    let trailers = ProcessingRequest {
        request: Some(Request::ResponseTrailers(HttpTrailers::default())),
        ..ProcessingRequest::default()
    };
    assert!(matches!(
        &send(&mut s, trailers)[0].response,
        Some(Response::ResponseTrailers(_))
    ));
}

#[test]
fn full_duplex_response_bodies_are_echoed() {
    let mut s = stream(config());
    let first = ProcessingRequest {
        protocol_config: Some(ProtocolConfiguration {
            request_body_mode: BodySendMode::Buffered as i32,
            response_body_mode: BodySendMode::FullDuplexStreamed as i32,
            ..ProtocolConfiguration::default()
        }),
        request: Some(headers_msg(&[(":method", "GET")], true)),
        ..ProcessingRequest::default()
    };
    send(&mut s, first);
    let chunk = ProcessingRequest {
        request: Some(Request::ResponseBody(HttpBody {
            body: b"partial".to_vec(),
            end_of_stream: false,
            ..HttpBody::default()
        })),
        ..ProcessingRequest::default()
    };
    let out = send(&mut s, chunk);
    let Some(Response::ResponseBody(b)) = &out[0].response else {
        panic!("expected a response body answer")
    };
    let Some(BodyChange::StreamedResponse(echo)) = b
        .response
        .as_ref()
        .unwrap()
        .body_mutation
        .as_ref()
        .unwrap()
        .mutation
        .as_ref()
    else {
        panic!("expected a streamed echo")
    };
    assert_eq!(
        (echo.body.as_slice(), echo.end_of_stream),
        (&b"partial"[..], false)
    );
}
