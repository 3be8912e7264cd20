//! FULL_DUPLEX_STREAMED: held headers, chunk echo, trailers, limits.

use super::*;

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
