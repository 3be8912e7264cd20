//! Trailers end bodies (review finding M7), and the client's model name goes back into the
//! response JSON-safe and even when split across chunks (L5).

use super::response::{rewrite_spec, rule};
use super::*;

/// A world whose rewrite serves `base` as `target`.
fn rewriting_to(target: &str) -> World {
    let mut world = World::new(1);
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[(target, None)])])];
    world
}

fn event(stream: &mut RequestStream, env: &Env<'_>, event: Event<'_>) -> Vec<Reply> {
    stream.on_event(event, env).unwrap().replies()
}

fn respond(stream: &mut RequestStream, env: &Env<'_>, content_type: &[u8]) {
    let resp: Vec<(&str, &[u8])> = vec![(":status", b"200"), ("content-type", content_type)];
    event(
        stream,
        env,
        Event::ResponseHeaders {
            headers: &resp,
            end_of_stream: false,
            served: ServedEndpoint::NoLbMetadata,
        },
    );
}

fn body_chunk(chunk: &[u8], end_of_stream: bool) -> Event<'_> {
    Event::ResponseBody {
        chunk,
        end_of_stream,
    }
}

#[test]
fn m7_request_trailers_end_the_body_schedule_and_are_answered() {
    let world = rewriting_to("base-v2");
    let env = world.env();
    let mut stream = RequestStream::new();
    let hdrs = headers("/v1/chat/completions");
    let request_headers = Event::RequestHeaders {
        headers: &hdrs,
        end_of_stream: false,
        subset: None,
    };
    assert!(event(&mut stream, &env, request_headers).is_empty());
    let chunk = Event::RequestBody {
        chunk: CHAT,
        end_of_stream: false,
    };
    assert!(event(&mut stream, &env, chunk).is_empty());
    let replies = event(&mut stream, &env, Event::RequestTrailers);

    let reply = routing(&replies);
    assert!(header(reply, DESTINATION_ENDPOINT_HEADER).is_some());
    // Chunked upstream: no length of ours, and the client's no longer fits the new body.
    assert_eq!(header(reply, "content-length"), None);
    assert!(reply.remove_headers.iter().any(|h| h == "content-length"));
    let [
        _,
        Reply::RequestBody {
            chunk,
            end_of_stream: false,
        },
        Reply::Trailers { response: false },
    ] = replies.as_slice()
    else {
        panic!("{replies:?}")
    };
    let sent: serde_json::Value = serde_json::from_slice(chunk).unwrap();
    assert_eq!(sent["model"], "base-v2");
    assert!(stream.pick().is_some());
}

#[test]
fn m7_a_buffered_response_ending_in_trailers_is_sent_before_them() {
    let world = rewriting_to("base-v2");
    let env = world.env();
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    respond(&mut stream, &env, b"application/json");
    let body = br#"{"model":"base-v2","usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
    assert!(event(&mut stream, &env, body_chunk(body, false)).is_empty());
    let replies = event(&mut stream, &env, Event::ResponseTrailers);
    assert_eq!(
        replies,
        [
            Reply::ResponseBody {
                chunk: br#"{"model":"base","usage":{"prompt_tokens":1,"completion_tokens":2}}"#
                    .to_vec(),
                end_of_stream: false,
            },
            Reply::Trailers { response: true },
        ]
    );
    assert!(stream.is_done());
    assert_eq!(stream.usage().map(|u| u.completion_tokens), Some(2));
}

#[test]
fn l5_a_client_model_with_quotes_is_restored_as_valid_json() {
    let client = r#"my "quoted" \ model"#;
    let restored = rewrite::restore_model(br#"{"model":"t","id":1}"#, "t", client).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&restored).unwrap();
    assert_eq!(parsed["model"], client);
    assert_eq!(parsed["id"], 1);
    // A target name holding a quote is matched as the server encodes it.
    let restored = rewrite::restore_model(br#"{"model": "a\"b"}"#, "a\"b", "c").unwrap();
    assert_eq!(restored, br#"{"model": "c"}"#);
}

#[test]
fn l5_a_model_name_split_across_sse_chunks_is_restored() {
    let world = rewriting_to("base-v2");
    let env = world.env();
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    respond(&mut stream, &env, b"text/event-stream");
    let events =
        b"data: {\"model\":\"base-v2\",\"n\":1}\n\ndata: {\"model\":\"base-v2\",\"n\":2}\n\n";
    let mut sent = Vec::new();
    // Every split point, including inside `"model":"base-v2"`.
    for piece in events.chunks(7) {
        for reply in event(&mut stream, &env, body_chunk(piece, false)) {
            let Reply::ResponseBody { chunk, .. } = reply else {
                panic!("{reply:?}")
            };
            sent.extend_from_slice(&chunk);
        }
    }
    // Nothing but a possible partial match is held back: each whole event is out.
    assert_eq!(
        sent,
        b"data: {\"model\":\"base\",\"n\":1}\n\ndata: {\"model\":\"base\",\"n\":2}\n\n"
    );
    let replies = event(&mut stream, &env, body_chunk(b"data: [DONE]\n\n", true));
    assert_eq!(body_chunk_bytes(&replies), b"data: [DONE]\n\n");
}

#[test]
fn l5_a_held_back_partial_match_is_flushed_at_the_end_of_the_stream() {
    let mut restorer = rewrite::ModelRestorer::new("target", "client");
    // Ends in what may be the start of `"model":"target"`: held back.
    assert_eq!(
        restorer.feed(br#"data: {"x":1,"mod"#, false),
        b"data: {\"x\":1,"
    );
    // It was not: it goes out unchanged with the last chunk.
    assert_eq!(restorer.feed(b"e\":2}", true), br#""mode":2}"#);
}

fn body_chunk_bytes(replies: &[Reply]) -> Vec<u8> {
    replies
        .iter()
        .flat_map(|r| match r {
            Reply::ResponseBody { chunk, .. } => chunk.clone(),
            _ => Vec::new(),
        })
        .collect()
}
