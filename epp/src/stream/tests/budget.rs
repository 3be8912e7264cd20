//! Memory bounds of one stream (review findings C2, H1, H5): a rewrite splices the model
//! without a JSON tree, buffered bodies draw from the process-wide budget, and a response
//! past its cap passes through.

use switchyard_runtime::budget::ByteBudget;

use super::response::{rewrite_spec, rule};
use super::*;

/// The bytes of every body chunk in `replies`, joined, and how many chunks there were.
fn body_sent(replies: &[Reply]) -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    let mut chunks = 0;
    for reply in replies {
        if let Reply::RequestBody { chunk, .. } | Reply::ResponseBody { chunk, .. } = reply {
            body.extend_from_slice(chunk);
            chunks += 1;
        }
    }
    (body, chunks)
}

/// Sends the response headers of a JSON (not streamed) 200.
fn json_response_headers(stream: &mut RequestStream, env: &Env<'_>) {
    let resp: Vec<(&str, &[u8])> = vec![(":status", b"200"), ("content-type", b"application/json")];
    stream
        .on_event(
            Event::ResponseHeaders {
                headers: &resp,
                end_of_stream: false,
                served: ServedEndpoint::NoLbMetadata,
            },
            env,
        )
        .unwrap()
        .replies();
}

fn response_chunk(
    stream: &mut RequestStream,
    env: &Env<'_>,
    chunk: &[u8],
    end_of_stream: bool,
) -> Vec<Reply> {
    stream
        .on_event(
            Event::ResponseBody {
                chunk,
                end_of_stream,
            },
            env,
        )
        .unwrap()
        .replies()
}

/// Headers, then a body chunk that does not end the body.
fn start_body(stream: &mut RequestStream, env: &Env<'_>, chunk: &[u8]) -> Vec<Reply> {
    let hdrs = headers("/v1/completions");
    stream
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: false,
                subset: None,
            },
            env,
        )
        .unwrap()
        .replies();
    stream
        .on_event(
            Event::RequestBody {
                chunk,
                end_of_stream: false,
            },
            env,
        )
        .unwrap()
        .replies()
}

#[test]
fn c2_a_rewrite_splices_the_model_and_leaves_every_other_byte_as_sent() {
    let mut world = World::new(1);
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[("base-v2", None)])])];
    // Key order, spacing and number spellings a JSON tree would not keep.
    let body = br#"{"zeta": 1.0e2, "model" : "base", "prompt":"hi", "alpha":0.10, "n":[1,2]}"#;
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/completions"),
        None,
        body,
    );
    let (sent, _) = body_sent(&replies);
    assert_eq!(
        String::from_utf8(sent.clone()).unwrap(),
        r#"{"zeta": 1.0e2, "model" : "base-v2", "prompt":"hi", "alpha":0.10, "n":[1,2]}"#
    );
    assert_eq!(
        header(routing(&replies), "content-length"),
        Some(sent.len().to_string().as_str())
    );
}

#[test]
fn c2_a_large_rewritten_body_is_spliced_across_chunks_and_a_strange_name_stays_json() {
    let mut world = World::new(1);
    let target = "we\"ird\\name";
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[(target, None)])])];
    // The shape of the review's attack: a small model and a huge array of small values.
    let zeros = "0,".repeat(100_000);
    let body = format!(r#"{{"model":"base","prompt":"p","x":[{zeros}0]}}"#);
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/completions"),
        None,
        body.as_bytes(),
    );
    let (sent, chunks) = body_sent(&replies);
    assert!(chunks > 1, "sent in {chunks} chunk(s)");
    let expected = body.replacen(r#""base""#, r#""we\"ird\\name""#, 1);
    assert_eq!(sent, expected.as_bytes());
    let parsed: serde_json::Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(parsed["model"], target);
}

#[test]
fn c2_a_model_that_is_not_a_string_is_a_400_that_says_so() {
    let world = World::new(1);
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/completions"),
        None,
        br#"{"model":{"name":"base"},"prompt":"p"}"#,
    );
    let (status, text) = immediate(&replies);
    assert_eq!(status, 400);
    assert!(
        text.contains("`model`") && text.contains("not a string"),
        "{text}"
    );
}

#[test]
fn h5_a_spent_budget_refuses_with_503_and_a_reason_and_frees_on_the_end_of_a_stream() {
    let mut world = World::new(1);
    world.budget = ByteBudget::new(1000);
    let env = world.env();
    let mut first = RequestStream::new();
    assert!(start_body(&mut first, &env, &[b' '; 600]).is_empty());
    assert!(world.budget.in_use() >= 600, "{}", world.budget.in_use());

    let mut second = RequestStream::new();
    let replies = start_body(&mut second, &env, &[b' '; 600]);
    let [Reply::Refuse(refusal)] = replies.as_slice() else {
        panic!("{replies:?}")
    };
    assert_eq!(refusal.status(), 503);
    assert_eq!(refusal.reason, "rejected-buffer-budget");
    assert!(refusal.text().contains("--max-buffered-bytes"), "{refusal}");
    assert!(second.is_done());

    // The refused stream holds nothing; the first one's share returns when it ends.
    drop(first);
    assert_eq!(world.budget.in_use(), 0);
    let mut third = RequestStream::new();
    assert!(start_body(&mut third, &env, &[b' '; 600]).is_empty());
}

#[test]
fn h5_the_request_share_returns_once_the_request_is_routed() {
    let mut world = World::new(1);
    world.budget = ByteBudget::new(10_000);
    let env = world.env();
    let mut stream = RequestStream::new();
    assert!(start_body(&mut stream, &env, &CHAT[..10]).is_empty());
    assert!(world.budget.in_use() >= 10);
    let replies = stream
        .on_event(
            Event::RequestBody {
                chunk: &CHAT[10..],
                end_of_stream: true,
            },
            &env,
        )
        .unwrap()
        .replies();
    assert!(
        matches!(replies[0], Reply::RequestHeaders(_)),
        "{replies:?}"
    );
    assert_eq!(world.budget.in_use(), 0);
    assert!(!stream.is_done());
}

#[test]
fn h1_a_response_past_the_cap_passes_through_instead_of_growing() {
    let mut world = World::new(1);
    world.max_response_buffer_bytes = 1000;
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[("base-v2", None)])])];
    let env = world.env();
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    json_response_headers(&mut stream, &env);

    // Under the cap: held, to restore the model at the end.
    let head = br#"{"model":"base-v2","data":""#;
    assert!(response_chunk(&mut stream, &env, head, false).is_empty());
    // Past it: what was held and this chunk go on at once, the model still restored.
    let filler = [b'x'; 1000];
    let replies = response_chunk(&mut stream, &env, &filler, false);
    let (sent, _) = body_sent(&replies);
    assert_eq!(
        sent,
        [&br#"{"model":"base","data":""#[..], &filler].concat()
    );
    // And so does everything after.
    let replies = response_chunk(&mut stream, &env, &filler, false);
    assert_eq!(body_sent(&replies).0, filler);
    let replies = response_chunk(&mut stream, &env, br#""}"#, true);
    assert_eq!(
        replies,
        [Reply::ResponseBody {
            chunk: br#""}"#.to_vec(),
            end_of_stream: true
        }]
    );
    assert!(stream.is_done());
}

#[test]
fn h1_a_spent_budget_makes_a_response_pass_through_rather_than_fail() {
    let mut world = World::new(1);
    world.budget = ByteBudget::new(100);
    let env = world.env();
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    json_response_headers(&mut stream, &env);
    let big = [b'y'; 500];
    let replies = response_chunk(&mut stream, &env, &big, false);
    assert_eq!(body_sent(&replies).0, big);
    assert_eq!(world.budget.in_use(), 0);
}

#[test]
fn h1_a_response_under_the_cap_is_still_buffered_restored_and_counted() {
    let mut world = World::new(1);
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[("base-v2", None)])])];
    let env = world.env();
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    json_response_headers(&mut stream, &env);
    let body = br#"{"model":"base-v2","usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
    let replies = response_chunk(&mut stream, &env, body, true);
    assert_eq!(
        body_sent(&replies).0,
        br#"{"model":"base","usage":{"prompt_tokens":3,"completion_tokens":4}}"#
    );
    assert_eq!(stream.usage().map(|u| u.completion_tokens), Some(4));
}

#[test]
fn h1_a_streamed_response_that_is_not_sse_goes_on_as_it_arrives() {
    let mut world = World::new(1);
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[("base-v2", None)])])];
    let env = world.env();
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    let resp: Vec<(&str, &[u8])> = vec![
        (":status", b"200"),
        ("content-type", b"application/x-ndjson"),
    ];
    stream
        .on_event(
            Event::ResponseHeaders {
                headers: &resp,
                end_of_stream: false,
                served: ServedEndpoint::NoLbMetadata,
            },
            &env,
        )
        .unwrap()
        .replies();
    let line = b"{\"model\":\"base-v2\",\"n\":1}\n";
    let replies = response_chunk(&mut stream, &env, line, false);
    assert_eq!(body_sent(&replies).0, b"{\"model\":\"base\",\"n\":1}\n");
    let replies = response_chunk(&mut stream, &env, b"", true);
    assert_eq!(
        replies,
        [Reply::ResponseBody {
            chunk: Vec::new(),
            end_of_stream: true
        }]
    );
}
