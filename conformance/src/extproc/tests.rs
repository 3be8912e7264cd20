#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::config::core::v3::HeaderMap;
use envoy_types::pb::envoy::service::ext_proc::v3::HttpBody;

use super::*;

fn headers(pairs: &[(&str, &str)], end_of_stream: bool) -> ProcessingRequest {
    let headers = pairs
        .iter()
        .map(|(k, v)| HeaderValue {
            key: (*k).to_owned(),
            raw_value: v.as_bytes().to_vec(),
            ..Default::default()
        })
        .collect();
    ProcessingRequest {
        request: Some(Phase::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap { headers }),
            end_of_stream,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn body(bytes: &[u8], end_of_stream: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Phase::RequestBody(HttpBody {
            body: bytes.to_vec(),
            end_of_stream,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The common response of a headers or body answer.
fn common(response: ProcessingResponse) -> CommonResponse {
    match response.response.unwrap() {
        Answer::RequestHeaders(h) => h.response.unwrap(),
        Answer::RequestBody(b) => b.response.unwrap(),
        other => panic!("unexpected answer {other:?}"),
    }
}

fn set_headers(common: &CommonResponse) -> Vec<(String, String, i32)> {
    common
        .header_mutation
        .iter()
        .flat_map(|m| &m.set_headers)
        .map(|o| {
            let h = o.header.as_ref().unwrap();
            (
                h.key.clone(),
                String::from_utf8(h.raw_value.clone()).unwrap(),
                o.append_action,
            )
        })
        .collect()
}

#[test]
fn header_rule_sets_model_header_and_clears_route_cache() {
    let mut exchange = Exchange::new(Arc::new(Rule::copy_header("x-route-to")));
    let answer = exchange
        .on_request(headers(&[(":path", "/"), ("X-Route-To", "model-a")], true))
        .unwrap();
    assert!(matches!(answer.response, Some(Answer::RequestHeaders(_))));
    let common = common(answer);
    assert!(common.clear_route_cache);
    assert_eq!(
        set_headers(&common),
        [(
            MODEL_HEADER.to_owned(),
            "model-a".to_owned(),
            HeaderAppendAction::OverwriteIfExistsOrAdd as i32
        )]
    );
}

#[test]
fn missing_header_changes_nothing() {
    let mut exchange = Exchange::new(Arc::new(Rule::copy_header("x-route-to")));
    let common = common(
        exchange
            .on_request(headers(&[(":path", "/")], false))
            .unwrap(),
    );
    assert!(!common.clear_route_cache);
    assert!(common.header_mutation.is_none());
    // The buffered body still gets its (empty) answer.
    let common = self::common(exchange.on_request(body(b"{}", true)).unwrap());
    assert!(!common.clear_route_cache);
}

#[test]
fn body_rule_routes_at_the_end_of_the_body() {
    let rule = Rule::body_field("model").set_header("x-model");
    let mut exchange = Exchange::new(Arc::new(rule));
    let first = common(
        exchange
            .on_request(headers(&[(":path", "/v1")], false))
            .unwrap(),
    );
    assert!(first.header_mutation.is_none());
    let partial = common(exchange.on_request(body(br#"{"model": "#, false)).unwrap());
    assert!(partial.header_mutation.is_none());
    let last = common(exchange.on_request(body(br#""b", "n": 1}"#, true)).unwrap());
    assert!(last.clear_route_cache);
    assert_eq!(set_headers(&last)[0].0, "x-model");
    assert_eq!(set_headers(&last)[0].1, "b");
}

#[test]
fn header_rule_wins_over_body_rule() {
    let rule = Rule::copy_header("x-route-to").or_body_field("model");
    let mut exchange = Exchange::new(Arc::new(rule));
    let first = common(
        exchange
            .on_request(headers(&[("x-route-to", "a")], false))
            .unwrap(),
    );
    assert_eq!(set_headers(&first)[0].1, "a");
    let second = common(
        exchange
            .on_request(body(br#"{"model":"b"}"#, true))
            .unwrap(),
    );
    assert!(second.header_mutation.is_none());
    assert!(!second.clear_route_cache);
}

#[test]
fn non_json_body_is_passed_through() {
    let mut exchange = Exchange::new(Arc::new(Rule::body_field("model")));
    exchange.on_request(headers(&[], false)).unwrap();
    let common = common(exchange.on_request(body(b"not json", true)).unwrap());
    assert!(common.header_mutation.is_none());
}

#[test]
fn empty_message_gets_no_answer() {
    let mut exchange = Exchange::new(Arc::new(Rule::body_field("model")));
    assert!(exchange.on_request(ProcessingRequest::default()).is_none());
}
