//! The response path, model rewrites and stream completion.

use std::sync::Arc;

use switchyard_api::protocol::MODEL_NAME_REWRITE_HEADER;
use switchyard_api::rewrite::{Match, ModelMatch};
use switchyard_api::{
    InferenceModelRewriteRule, InferenceModelRewriteSpec, PoolObjectReference, TargetModel,
};

use super::*;

pub(super) fn rewrite_spec(
    rules: Vec<InferenceModelRewriteRule>,
) -> Arc<InferenceModelRewriteSpec> {
    Arc::new(InferenceModelRewriteSpec {
        pool_ref: PoolObjectReference {
            group: "inference.networking.k8s.io".into(),
            kind: "InferencePool".into(),
            name: "p".into(),
        },
        rules,
    })
}

pub(super) fn rule(matches: &[&str], targets: &[(&str, Option<i32>)]) -> InferenceModelRewriteRule {
    InferenceModelRewriteRule {
        matches: matches
            .iter()
            .map(|m| Match {
                model: ModelMatch::exact(*m),
            })
            .collect(),
        targets: targets
            .iter()
            .map(|(t, w)| TargetModel {
                model_rewrite: (*t).into(),
                weight: *w,
            })
            .collect(),
    }
}

#[test]
fn rewrites_the_model_and_restores_it_in_the_response() {
    let mut world = World::new(1);
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(&["base"], &[("base-v2", None)])])];
    let mut stream = RequestStream::new();
    let replies = world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    let Reply::RequestBody { chunk, .. } = &replies[1] else {
        panic!("{replies:?}")
    };
    let sent: serde_json::Value = serde_json::from_slice(chunk).unwrap();
    assert_eq!(sent["model"], "base-v2");
    assert_eq!(
        header(routing(&replies), "content-length"),
        Some(chunk.len().to_string().as_str())
    );

    let env = world.env();
    let resp: Vec<(&str, &[u8])> = vec![(":status", b"200"), ("content-type", b"application/json")];
    let replies = stream
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
    let Reply::ResponseHeaders(h) = &replies[0] else {
        panic!()
    };
    assert_eq!(header(h, RESPONSE_HEADERS_MARKER), Some("true"));
    assert!(
        stream
            .on_event(
                Event::ResponseBody {
                    chunk: br#"{"model":"base"#,
                    end_of_stream: false
                },
                &env
            )
            .unwrap()
            .replies()
            .is_empty()
    );
    let replies = stream
        .on_event(
            Event::ResponseBody {
                chunk: br#"-v2","id":1}"#,
                end_of_stream: true,
            },
            &env,
        )
        .unwrap()
        .replies();
    assert_eq!(
        replies,
        [Reply::ResponseBody {
            chunk: br#"{"model":"base","id":1}"#.to_vec(),
            end_of_stream: true
        }]
    );
    assert!(stream.is_done());
    assert_eq!(stream.response_status(), Some(200));
}

#[test]
fn forced_model_header_beats_rules() {
    let mut world = World::new(1);
    // A forced target must be a model the pool knows (H2): here a rewrite's target.
    world.snapshot.rewrites = vec![rewrite_spec(vec![
        rule(&[], &[("catch-all", None)]),
        rule(&["legacy"], &[("forced", None)]),
    ])];
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((MODEL_NAME_REWRITE_HEADER, b"forced"));
    let mut stream = RequestStream::new();
    world.request(&mut stream, &hdrs, None, CHAT);
    assert_eq!(stream.models(), (Some("base"), Some("forced")));
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    assert_eq!(stream.models(), (Some("base"), Some("catch-all")));
}

#[test]
fn streaming_responses_are_forwarded_chunk_by_chunk_and_release_on_trailers() {
    let world = World::new(1);
    let load = Arc::clone(&world.snapshot.endpoints[0].load);
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    assert_eq!(load.in_flight(), 1);
    let env = world.env();
    let resp: Vec<(&str, &[u8])> =
        vec![(":status", b"200"), ("content-type", b"text/event-stream")];
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
    let replies = stream
        .on_event(
            Event::ResponseBody {
                chunk: b"data: {}\n\n",
                end_of_stream: false,
            },
            &env,
        )
        .unwrap()
        .replies();
    assert_eq!(
        replies,
        [Reply::ResponseBody {
            chunk: b"data: {}\n\n".to_vec(),
            end_of_stream: false
        }]
    );
    let replies = stream
        .on_event(Event::ResponseTrailers, &env)
        .unwrap()
        .replies();
    assert_eq!(replies, [Reply::Trailers { response: true }]);
    assert_eq!(load.in_flight(), 0);
    assert!(stream.is_done());
}

/// The response headers reply of a scheduled request, given what the proxy
/// reported as the served endpoint.
fn response_headers_reply(world: &World, served: ServedEndpoint<'_>) -> HeadersReply {
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    let resp: Vec<(&str, &[u8])> = vec![(":status", b"200")];
    let replies = stream
        .on_event(
            Event::ResponseHeaders {
                headers: &resp,
                end_of_stream: false,
                served,
            },
            &world.env(),
        )
        .unwrap()
        .replies();
    match replies.as_slice() {
        [Reply::ResponseHeaders(h)] => h.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_served_endpoint_verifier_echoes_what_the_proxy_reported() {
    let mut world = World::new(2);
    world.scheduler = Scheduler::new(
        crate::scheduling::SchedulerConfig::from_yaml(
            "plugins: [{type: destination-endpoint-served-verifier}, {type: queue-scorer}]\n\
             schedulingProfiles: [{name: p, plugins: [{pluginRef: queue-scorer}]}]\n",
        )
        .unwrap(),
    );
    let reply = response_headers_reply(&world, ServedEndpoint::Reported("10.0.0.2:8000"));
    assert_eq!(
        header(&reply, SERVED_ENDPOINT_TEST_HEADER),
        Some("10.0.0.2:8000")
    );
    assert_eq!(header(&reply, RESPONSE_HEADERS_MARKER), Some("true"));
    // Missing metadata is reported, in upstream's words, rather than hidden.
    let reply = response_headers_reply(&world, ServedEndpoint::NoLbMetadata);
    assert_eq!(
        header(&reply, SERVED_ENDPOINT_TEST_HEADER),
        Some("fail: missing envoy lb metadata")
    );
    let reply = response_headers_reply(&world, ServedEndpoint::NoServedKey);
    assert_eq!(
        header(&reply, SERVED_ENDPOINT_TEST_HEADER),
        Some("fail: missing destination endpoint served metadata")
    );
}

#[test]
fn without_the_verifier_the_served_endpoint_stays_private() {
    let world = World::new(2);
    let reply = response_headers_reply(&world, ServedEndpoint::Reported("10.0.0.2:8000"));
    assert_eq!(header(&reply, SERVED_ENDPOINT_TEST_HEADER), None);
    assert_eq!(header(&reply, RESPONSE_HEADERS_MARKER), Some("true"));
}

#[test]
fn dropping_a_stream_releases_its_reservation() {
    let world = World::new(1);
    let load = Arc::clone(&world.snapshot.endpoints[0].load);
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    assert_eq!(load.in_flight(), 1);
    drop(stream);
    assert_eq!(load.in_flight(), 0);
}

#[test]
fn rewrite_precedence_and_weights() {
    let older = rewrite_spec(vec![
        rule(&[], &[("generic", None)]),
        rule(&["a"], &[("exact-old", None)]),
    ]);
    let newer = rewrite_spec(vec![rule(&["a"], &[("exact-new", None)])]);
    let rewrites = vec![older, newer];
    assert_eq!(
        rewrite::rewrite_target(&rewrites, "a", None),
        Some("exact-old")
    );
    assert_eq!(
        rewrite::rewrite_target(&rewrites, "b", None),
        Some("generic")
    );
    assert_eq!(rewrite::rewrite_target(&[], "a", None), None);
    let weighted = vec![rewrite_spec(vec![rule(
        &["a"],
        &[("never", Some(0)), ("always", Some(10))],
    )])];
    assert!((0..50).all(|_| rewrite::rewrite_target(&weighted, "a", None) == Some("always")));
    let empty_targets = vec![rewrite_spec(vec![rule(&["a"], &[])])];
    assert_eq!(rewrite::rewrite_target(&empty_targets, "a", None), None);
}

#[test]
fn a_session_key_makes_the_weighted_choice_sticky_and_keeps_the_split() {
    let split = vec![rewrite_spec(vec![rule(
        &["a"],
        &[("a-v1", Some(90)), ("a-v2", Some(10))],
    )])];
    let mut v2_sessions = 0;
    for session in 0..10_000u32 {
        let key = format!("session-{session}");
        let first = rewrite::rewrite_target(&split, "a", Some(key.as_bytes()));
        // The same session always lands on the same target.
        for _ in 0..3 {
            assert_eq!(
                rewrite::rewrite_target(&split, "a", Some(key.as_bytes())),
                first
            );
        }
        if first == Some("a-v2") {
            v2_sessions += 1;
        }
    }
    // Across sessions the split still follows the weights (10% ± 1.5%).
    assert!(
        (850..=1150).contains(&v2_sessions),
        "{v2_sessions} of 10,000"
    );
    // Unweighted targets are spread by the key too.
    let even = vec![rewrite_spec(vec![rule(
        &["a"],
        &[("x", None), ("y", None)],
    )])];
    let picks: std::collections::HashSet<_> = (0..64u32)
        .map(|s| rewrite::rewrite_target(&even, "a", Some(&s.to_le_bytes())))
        .collect();
    assert_eq!(picks.len(), 2, "{picks:?}");
}

#[test]
fn the_session_header_pins_a_request_stream_to_one_rewrite_target() {
    let mut world = World::new(1);
    world.snapshot.rewrites = vec![rewrite_spec(vec![rule(
        &["base"],
        &[("base-v1", Some(50)), ("base-v2", Some(50))],
    )])];
    let target_for = |world: &World, session: &[u8]| {
        let mut hdrs = headers("/v1/chat/completions");
        hdrs.push((SESSION_HEADER, session));
        let mut stream = RequestStream::new();
        world.request(&mut stream, &hdrs, None, CHAT);
        stream.models().1.map(str::to_owned)
    };
    for session in [&b"alice"[..], b"bob", b"carol", b"dave"] {
        let first = target_for(&world, session);
        assert!(first.is_some());
        assert!((0..20).all(|_| target_for(&world, session) == first));
    }
    // Without the header each request draws anew: both targets show up.
    let drawn: std::collections::HashSet<_> = (0..64)
        .map(|_| {
            let mut stream = RequestStream::new();
            world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
            stream.models().1.map(str::to_owned)
        })
        .collect();
    assert_eq!(drawn.len(), 2, "{drawn:?}");
}

#[test]
fn restore_model_in_chunks() {
    assert_eq!(
        rewrite::restore_model(br#"{"model":"t","x":{"model": "t"}}"#, "t", "model").as_deref(),
        Some(&br#"{"model":"model","x":{"model": "model"}}"#[..])
    );
    assert_eq!(rewrite::restore_model(b"no match", "t", "c"), None);
    assert_eq!(rewrite::restore_model(b"", "t", "c"), None);
}
