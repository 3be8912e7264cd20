//! What the machine owns now that the driver keeps no request state: the injected random
//! source, the body limit and its 413, the priority computed once, and the progress and
//! end-of-request summary the shell records.

use std::time::Duration;

use super::*;
use crate::refusal::ErrorCode;

/// Picks the last eligible endpoint, to tell its choice apart from [`FixedEntropy`]'s.
#[derive(Debug)]
struct LastEntropy;

impl Entropy for LastEntropy {
    fn index_below(&self, len: usize) -> usize {
        len - 1
    }

    fn uuid_bytes(&self) -> [u8; 16] {
        [0; 16]
    }
}

/// Routes a body-less request (no `x-request-id`) under `entropy`; returns the destination
/// and the generated request id.
fn bodiless(world: &World, entropy: &dyn Entropy) -> (String, String) {
    let env = Env {
        entropy,
        ..world.env()
    };
    let hdrs: Vec<(&str, &[u8])> = vec![(":path", b"/v1/models"), (":method", b"GET")];
    let replies = RequestStream::new()
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: true,
                subset: None,
            },
            &env,
        )
        .unwrap()
        .replies();
    let reply = routing(&replies);
    (
        header(reply, DESTINATION_ENDPOINT_HEADER)
            .unwrap()
            .to_owned(),
        header(reply, "x-request-id").unwrap().to_owned(),
    )
}

#[test]
fn random_choices_come_only_from_the_injected_entropy() {
    let world = World::new(3);
    let first = world.snapshot.endpoints[0].address.to_string();
    let last = world.snapshot.endpoints[2].address.to_string();
    for _ in 0..5 {
        assert_eq!(
            bodiless(&world, &FixedEntropy),
            (
                first.clone(),
                "abababab-abab-4bab-abab-abababababab".to_owned()
            ),
            "the same source gives the same request every time"
        );
    }
    assert_eq!(
        bodiless(&world, &LastEntropy),
        (last, "00000000-0000-4000-8000-000000000000".to_owned())
    );
}

#[test]
fn a_body_over_the_limit_is_refused_413_by_the_machine() {
    let world = World::new(1);
    let env = Env {
        max_body_bytes: 10,
        ..world.env()
    };
    let mut stream = RequestStream::new();
    let hdrs = headers("/v1/completions");
    let event = Event::RequestHeaders {
        headers: &hdrs,
        end_of_stream: false,
        subset: None,
    };
    assert!(stream.on_event(event, &env).unwrap().replies().is_empty());
    let under = Event::RequestBody {
        chunk: b"{\"model\":",
        end_of_stream: false,
    };
    assert!(stream.on_event(under, &env).unwrap().replies().is_empty());
    let over = Event::RequestBody {
        chunk: b"\"m\"}",
        end_of_stream: true,
    };
    let replies = stream.on_event(over, &env).unwrap().replies();
    let (status, text) = immediate(&replies);
    assert_eq!(status, 413);
    assert_eq!(
        text,
        "inference error: BadRequest - the request body exceeds the EPP's limit of 10 bytes \
         (--max-body-bytes)"
    );
    assert!(stream.is_done());
    let progress = stream.take_progress();
    assert!(progress.routed.is_none());
    let summary = progress.finished.expect("the 413 ends the request");
    assert!(matches!(
        summary.ending,
        Ending::Refused(Refusal {
            code: ErrorCode::BodyTooLarge,
            reason: "body-too-large",
            ..
        })
    ));
}

#[test]
fn priority_is_read_once_from_the_request_headers() {
    let mut world = World::new(2);
    world.snapshot.objectives.insert("chat".into(), 3);
    let mut stream = RequestStream::new();
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((INFERENCE_OBJECTIVE_HEADER, b"chat"));
    let env = world.env();
    let event = Event::RequestHeaders {
        headers: &hdrs,
        end_of_stream: false,
        subset: None,
    };
    stream.on_event(event, &env).unwrap();
    // The objective changes before the body ends; the request keeps the priority it came with.
    world.snapshot.objectives.insert("chat".into(), -1);
    let env = Env {
        flow_control: true,
        ..world.env()
    };
    let body = Event::RequestBody {
        chunk: CHAT,
        end_of_stream: true,
    };
    let Step::Admit(request) = stream.on_event(body, &env).unwrap() else {
        panic!("flow control is on")
    };
    assert_eq!(request.priority, 3);
}

/// An SSE response with two token events and a usage event.
const SSE: [&[u8]; 3] = [
    b"data: {\"choices\":[{\"text\":\"a\"}]}\n\n",
    b"data: {\"choices\":[{\"text\":\"b\"}]}\n\n",
    b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
];

#[test]
fn the_summary_times_the_request_from_the_injected_clock() {
    let world = World::new(1);
    let start = Instant::now();
    let at = |ms: u64| Env {
        now: start + Duration::from_millis(ms),
        ..world.env()
    };
    let mut stream = RequestStream::new();
    let hdrs = headers("/v1/completions");
    let body = br#"{"model":"base","prompt":"hi","stream":true}"#;
    let event = Event::RequestHeaders {
        headers: &hdrs,
        end_of_stream: false,
        subset: None,
    };
    stream.on_event(event, &at(0)).unwrap();
    let event = Event::RequestBody {
        chunk: body,
        end_of_stream: true,
    };
    stream.on_event(event, &at(1)).unwrap();
    let progress = stream.take_progress();
    let routed = progress.routed.expect("routed on the body's end");
    assert!(progress.decided && progress.finished.is_none());
    assert_eq!(routed.body_bytes, body.len());
    assert_eq!(routed.labels.client_model.as_deref(), Some("base"));

    let resp: Vec<(&str, &[u8])> =
        vec![(":status", b"200"), ("content-type", b"text/event-stream")];
    let event = Event::ResponseHeaders {
        headers: &resp,
        end_of_stream: false,
        served: ServedEndpoint::NoLbMetadata,
    };
    stream.on_event(event, &at(10)).unwrap();
    assert_eq!(stream.take_progress().responded, Some(200));
    for (ms, chunk) in [(30, SSE[0]), (50, SSE[1]), (60, SSE[2])] {
        let event = Event::ResponseBody {
            chunk,
            end_of_stream: false,
        };
        stream.on_event(event, &at(ms)).unwrap();
        assert!(
            stream.take_progress().is_empty(),
            "nothing to record mid-body"
        );
    }
    stream.on_event(Event::ResponseTrailers, &at(70)).unwrap();
    let summary = stream.take_progress().finished.expect("trailers end it");
    assert_eq!(summary.ending, Ending::Completed);
    assert_eq!(summary.duration, Duration::from_millis(70));
    assert_eq!(summary.time_to_first_token, Some(Duration::from_millis(30)));
    // Three output tokens: the two after the first took 40 ms.
    let per_token = summary.time_per_output_token.unwrap();
    assert!(
        per_token.abs_diff(Duration::from_millis(20)) < Duration::from_micros(1),
        "{per_token:?}"
    );
    assert_eq!(summary.usage.map(|u| u.prompt_tokens), Some(7));
    assert!(
        stream.take_progress().is_empty(),
        "the summary is produced once"
    );
}

#[test]
fn a_close_mid_request_ends_it_with_a_summary() {
    let world = World::new(1);
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    assert!(stream.take_progress().routed.is_some());
    assert!(stream.pick().is_some());
    stream.on_close(Instant::now());
    assert!(stream.pick().is_none(), "the reservation is released");
    let summary = stream.take_progress().finished.unwrap();
    assert_eq!(summary.ending, Ending::Closed);
    stream.on_close(Instant::now());
    assert!(
        stream.take_progress().is_empty(),
        "a second close adds nothing"
    );
}
