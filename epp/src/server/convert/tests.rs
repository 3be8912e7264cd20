use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, Metadata};
use envoy_types::pb::envoy::service::ext_proc::v3::HttpHeaders;
use envoy_types::pb::google::protobuf::ListValue;

use super::*;
use crate::refusal::ErrorCode;

fn with_hint(value: Value) -> ProcessingRequest {
    let inner = Struct {
        fields: [(DESTINATION_ENDPOINT_SUBSET_KEY.to_owned(), value)].into(),
    };
    ProcessingRequest {
        metadata_context: Some(Metadata {
            filter_metadata: [(SUBSET_HINT_METADATA_NAMESPACE.to_owned(), inner)].into(),
            ..Metadata::default()
        }),
        request: Some(Inbound::RequestHeaders(HttpHeaders::default())),
        ..ProcessingRequest::default()
    }
}

fn string(s: &str) -> Value {
    string_value(s.to_owned())
}

fn with_lb_metadata(fields: Vec<(&str, Value)>) -> ProcessingRequest {
    let inner = Struct {
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    ProcessingRequest {
        metadata_context: Some(Metadata {
            filter_metadata: [(ENVOY_LB_METADATA_NAMESPACE.to_owned(), inner)].into(),
            ..Metadata::default()
        }),
        request: Some(Inbound::ResponseHeaders(HttpHeaders::default())),
        ..ProcessingRequest::default()
    }
}

#[test]
fn served_endpoint_reads_the_envoy_lb_key_and_says_what_is_missing() {
    let reported = with_lb_metadata(vec![
        (
            DESTINATION_ENDPOINT_KEY,
            string("10.0.0.1:8000,10.0.0.2:8000"),
        ),
        (DESTINATION_ENDPOINT_SERVED_KEY, string("10.0.0.2:8000")),
    ]);
    assert_eq!(
        served_endpoint(&reported),
        ServedEndpoint::Reported("10.0.0.2:8000")
    );
    // The picker's own destination key is not mistaken for the served one.
    let only_destination =
        with_lb_metadata(vec![(DESTINATION_ENDPOINT_KEY, string("10.0.0.1:8000"))]);
    assert_eq!(
        served_endpoint(&only_destination),
        ServedEndpoint::NoServedKey
    );
    let not_a_string = with_lb_metadata(vec![(
        DESTINATION_ENDPOINT_SERVED_KEY,
        Value {
            kind: Some(Kind::NumberValue(8000.0)),
        },
    )]);
    assert_eq!(served_endpoint(&not_a_string), ServedEndpoint::NoServedKey);
    // The hint namespace is a different namespace.
    assert_eq!(
        served_endpoint(&with_hint(string("10.0.0.1:8000"))),
        ServedEndpoint::NoLbMetadata
    );
    assert_eq!(
        served_endpoint(&ProcessingRequest::default()),
        ServedEndpoint::NoLbMetadata
    );
}

#[test]
fn subset_hint_reads_a_list_or_a_comma_separated_string() {
    let list = Value {
        kind: Some(Kind::ListValue(ListValue {
            values: vec![
                string("10.0.0.1:8000"),
                string(" 10.0.0.2 "),
                Value {
                    kind: Some(Kind::NumberValue(3.0)),
                },
            ],
        })),
    };
    assert_eq!(
        subset_hint(&with_hint(list)),
        Some(vec!["10.0.0.1:8000".to_owned(), "10.0.0.2".to_owned()])
    );
    assert_eq!(
        subset_hint(&with_hint(string("10.0.0.1:8000, [fd00::1]:8000,"))),
        Some(vec![
            "10.0.0.1:8000".to_owned(),
            "[fd00::1]:8000".to_owned()
        ])
    );
    // Present but empty or of the wrong type: an empty subset (the EPP answers 503).
    assert_eq!(subset_hint(&with_hint(string(""))), Some(Vec::new()));
    assert_eq!(
        subset_hint(&with_hint(Value {
            kind: Some(Kind::BoolValue(true))
        })),
        Some(Vec::new())
    );
    // Absent: the whole pool is eligible.
    assert_eq!(subset_hint(&ProcessingRequest::default()), None);
}

#[test]
fn header_pairs_prefer_raw_values() {
    let map = HeaderMap {
        headers: vec![
            HeaderValue {
                key: ":path".into(),
                raw_value: b"/v1/completions".to_vec(),
                ..HeaderValue::default()
            },
            HeaderValue {
                key: "x-old".into(),
                value: "text".into(),
                ..HeaderValue::default()
            },
        ],
    };
    let pairs = header_pairs(Some(&map));
    assert_eq!(
        pairs,
        [(":path", &b"/v1/completions"[..]), ("x-old", &b"text"[..])]
    );
    assert!(header_pairs(None).is_empty());
}

#[test]
fn routing_headers_carry_the_same_destination_in_metadata() {
    let reply = Reply::RequestHeaders(HeadersReply {
        set_headers: vec![(
            DESTINATION_ENDPOINT_KEY.to_owned(),
            "[fd00::1]:8000".to_owned(),
        )],
        remove_headers: vec![DESTINATION_ENDPOINT_SUBSET_KEY.to_owned()],
        clear_route_cache: true,
        destination_metadata: Some("[fd00::1]:8000".to_owned()),
    });
    let response = to_response(reply);
    let Some(Outbound::RequestHeaders(headers)) = &response.response else {
        panic!("expected request headers, got {response:?}");
    };
    let common = headers.response.as_ref().unwrap();
    assert!(common.clear_route_cache);
    let mutation = common.header_mutation.as_ref().unwrap();
    let header = mutation.set_headers[0].header.as_ref().unwrap();
    assert_eq!(header.key, DESTINATION_ENDPOINT_KEY);
    assert_eq!(header.raw_value, b"[fd00::1]:8000");
    assert_eq!(mutation.remove_headers, [DESTINATION_ENDPOINT_SUBSET_KEY]);
    let lb = &response.dynamic_metadata.as_ref().unwrap().fields[ENVOY_LB_METADATA_NAMESPACE];
    let Some(Kind::StructValue(lb)) = &lb.kind else {
        panic!("envoy.lb is not a struct: {lb:?}");
    };
    assert_eq!(
        lb.fields[DESTINATION_ENDPOINT_KEY].kind,
        Some(Kind::StringValue("[fd00::1]:8000".into()))
    );
}

#[test]
fn bodies_go_back_as_streamed_chunks() {
    for (reply, response_side) in [
        (
            Reply::RequestBody {
                chunk: b"abc".to_vec(),
                end_of_stream: true,
            },
            false,
        ),
        (
            Reply::ResponseBody {
                chunk: b"abc".to_vec(),
                end_of_stream: false,
            },
            true,
        ),
    ] {
        let out = to_response(reply);
        let body = match out.response {
            Some(Outbound::RequestBody(b)) if !response_side => b,
            Some(Outbound::ResponseBody(b)) if response_side => b,
            other => panic!("wrong phase: {other:?}"),
        };
        let mutation = body
            .response
            .unwrap()
            .body_mutation
            .unwrap()
            .mutation
            .unwrap();
        let BodyChange::StreamedResponse(streamed) = mutation else {
            panic!("not a streamed body");
        };
        assert_eq!(streamed.body, b"abc");
        assert_eq!(streamed.end_of_stream, !response_side);
    }
    assert!(matches!(
        to_response(Reply::Trailers { response: true }).response,
        Some(Outbound::ResponseTrailers(_))
    ));
    assert!(matches!(
        to_response(Reply::Trailers { response: false }).response,
        Some(Outbound::RequestTrailers(_))
    ));
}

#[test]
fn immediate_replies_are_openai_errors_with_a_reason_header() {
    let out = to_response(Reply::Refuse(Refusal::new(
        ErrorCode::ServiceUnavailable,
        "the pool has no ready endpoint",
    )));
    let Some(Outbound::ImmediateResponse(immediate)) = out.response else {
        panic!("not immediate");
    };
    assert_eq!(immediate.status.unwrap().code, 503);
    let body: serde_json::Value = serde_json::from_slice(&immediate.body).unwrap();
    assert_eq!(body["error"]["code"], 503);
    assert_eq!(body["error"]["type"], "ServiceUnavailableError");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no ready endpoint")
    );
    let headers = immediate.headers.unwrap().set_headers;
    let reason = headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == REQUEST_DROPPED_REASON_HEADER)
        .unwrap();
    assert_eq!(reason.raw_value, b"rejected-no-endpoints");
    // A message with quotes stays valid JSON.
    let tricky = Refusal::new(ErrorCode::BadRequest, "bad \"model\"\n");
    let tricky: serde_json::Value = serde_json::from_slice(&tricky.json_body()).unwrap();
    assert_eq!(
        tricky["error"]["message"],
        "inference error: BadRequest - bad \"model\"\n"
    );
}

#[test]
fn a_flow_control_reason_replaces_the_status_default_once() {
    let refusal = Refusal::new(ErrorCode::ResourceExhausted, "request timed out in queue")
        .with_reason("rejected-ttl-expired");
    let out = to_response(Reply::Refuse(refusal));
    let Some(Outbound::ImmediateResponse(immediate)) = out.response else {
        panic!("not immediate");
    };
    let reasons: Vec<_> = immediate
        .headers
        .unwrap()
        .set_headers
        .into_iter()
        .filter_map(|h| h.header)
        .filter(|h| h.key == REQUEST_DROPPED_REASON_HEADER)
        .map(|h| String::from_utf8(h.raw_value).unwrap())
        .collect();
    assert_eq!(reasons, ["rejected-ttl-expired"]);
    assert_eq!(immediate.status.unwrap().code, 429);
}

#[test]
fn l16_the_subset_hint_comes_from_filter_metadata_only_and_is_bounded() {
    // A client header named like the hint, and no metadata: no hint.
    let from_client = ProcessingRequest {
        request: Some(Inbound::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: DESTINATION_ENDPOINT_SUBSET_KEY.into(),
                    raw_value: b"10.0.0.9:8000".to_vec(),
                    ..HeaderValue::default()
                }],
            }),
            ..HttpHeaders::default()
        })),
        ..ProcessingRequest::default()
    };
    assert_eq!(subset_hint(&from_client), None);
    // The key under another namespace (say, a header-to-metadata filter's own): no hint.
    let mut elsewhere = with_hint(string("10.0.0.9:8000"));
    let metadata = elsewhere.metadata_context.as_mut().unwrap();
    let inner = metadata
        .filter_metadata
        .remove(SUBSET_HINT_METADATA_NAMESPACE)
        .unwrap();
    metadata
        .filter_metadata
        .insert("envoy.filters.http.header_to_metadata".into(), inner);
    assert_eq!(subset_hint(&elsewhere), None);
    // Bounded: over-long entries dropped, the count capped.
    let long = format!("10.0.0.1:8000{}", "0".repeat(MAX_SUBSET_ENTRY_BYTES));
    let many: Vec<String> = (0..MAX_SUBSET_ENTRIES + 10)
        .map(|i| format!("10.0.{}.{}:8000", i / 256, i % 256))
        .collect();
    let text = format!("{long},{}", many.join(","));
    let hint = subset_hint(&with_hint(string(&text))).unwrap();
    assert_eq!(hint.len(), MAX_SUBSET_ENTRIES);
    assert!(!hint.contains(&long));
}
