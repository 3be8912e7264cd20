//! Body-mode selection, protocol errors and the response path.

use super::*;

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
