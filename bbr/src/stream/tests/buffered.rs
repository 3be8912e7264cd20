//! Bodiless requests and BUFFERED bodies.

use super::*;

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
    let mut s = RequestStream::new(Arc::new(config), Arc::new(index));
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
