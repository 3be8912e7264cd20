use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use switchyard_api::protocol::INFERENCE_OBJECTIVE_HEADER;

use super::*;
use crate::datastore::Endpoint;
use crate::datastore::EndpointMetrics;
use crate::scheduling::tests::pool;

/// The session header the test environment makes rewrites sticky by.
pub(super) const SESSION_HEADER: &str = "x-session-id";

pub(super) const CHAT: &[u8] = br#"{"model":"base","messages":[{"role":"user","content":"hi"}]}"#;

pub(super) fn headers(path: &str) -> Vec<(&str, &[u8])> {
    vec![
        (":path", path.as_bytes()),
        (":method", b"POST"),
        ("x-request-id", b"req-1"),
    ]
}

/// A fixed random source: the first eligible endpoint, and a constant request id.
#[derive(Debug)]
pub(super) struct FixedEntropy;

impl Entropy for FixedEntropy {
    fn index_below(&self, _len: usize) -> usize {
        0
    }

    fn uuid_bytes(&self) -> [u8; 16] {
        [0xab; 16]
    }
}

/// The replies of a step that must not wait for admission.
pub(super) trait StepExt {
    fn replies(self) -> Vec<Reply>;
}

impl StepExt for Step {
    fn replies(self) -> Vec<Reply> {
        match self {
            Step::Replies(replies) => replies,
            Step::Admit(request) => {
                panic!("expected replies, got an admission request {request:?}")
            }
        }
    }
}

pub(super) struct World {
    snapshot: PoolSnapshot,
    scheduler: Scheduler,
    budget: ByteBudget,
    max_response_buffer_bytes: usize,
}

impl World {
    pub(super) fn new(endpoints: usize) -> Self {
        Self {
            snapshot: pool(&vec![EndpointMetrics::default(); endpoints]),
            scheduler: Scheduler::default(),
            budget: ByteBudget::unlimited(),
            max_response_buffer_bytes: 1 << 20,
        }
    }

    pub(super) fn env(&self) -> Env<'_> {
        Env {
            snapshot: &self.snapshot,
            scheduler: &self.scheduler,
            now: Instant::now(),
            disable_subset_filter: false,
            header_trust: &HeaderTrust::Always,
            flow_control: false,
            rewrite_session_header: Some(SESSION_HEADER),
            max_body_bytes: 1 << 20,
            budget: &self.budget,
            max_response_buffer_bytes: self.max_response_buffer_bytes,
            entropy: &FixedEntropy,
        }
    }

    /// Sends headers then `body` in one final chunk; returns the replies to the body.
    fn request(
        &self,
        stream: &mut RequestStream,
        hdrs: &[(&str, &[u8])],
        subset: Option<&[String]>,
        body: &[u8],
    ) -> Vec<Reply> {
        let env = self.env();
        let first = stream
            .on_event(
                Event::RequestHeaders {
                    headers: hdrs,
                    end_of_stream: false,
                    subset,
                },
                &env,
            )
            .unwrap()
            .replies();
        assert!(first.is_empty(), "headers are answered after the body");
        stream
            .on_event(
                Event::RequestBody {
                    chunk: body,
                    end_of_stream: true,
                },
                &env,
            )
            .unwrap()
            .replies()
    }
}

pub(super) fn routing(replies: &[Reply]) -> &HeadersReply {
    match &replies[0] {
        Reply::RequestHeaders(h) => h,
        other => panic!("expected request headers, got {other:?}"),
    }
}

pub(super) fn header<'h>(reply: &'h HeadersReply, name: &str) -> Option<&'h str> {
    reply
        .set_headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn immediate(replies: &[Reply]) -> (u16, String) {
    match replies {
        [Reply::Refuse(refusal)] => (refusal.status(), refusal.text()),
        other => panic!("expected one immediate reply, got {other:?}"),
    }
}

#[test]
fn routes_after_the_whole_body() {
    let world = World::new(3);
    let mut stream = RequestStream::new();
    let env = world.env();
    let hdrs = headers("/v1/chat/completions");
    stream
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: false,
                subset: None,
            },
            &env,
        )
        .unwrap()
        .replies();
    let (a, b) = CHAT.split_at(10);
    assert!(
        stream
            .on_event(
                Event::RequestBody {
                    chunk: a,
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
            Event::RequestBody {
                chunk: b,
                end_of_stream: true,
            },
            &env,
        )
        .unwrap()
        .replies();
    let reply = routing(&replies);
    let destination = header(reply, DESTINATION_ENDPOINT_HEADER).unwrap();
    assert_eq!(reply.destination_metadata.as_deref(), Some(destination));
    assert!(
        world
            .snapshot
            .endpoint_at(destination.parse().unwrap())
            .is_some()
    );
    assert!(reply.clear_route_cache);
    assert_eq!(
        header(reply, "content-length"),
        Some(CHAT.len().to_string().as_str())
    );
    assert_eq!(
        header(reply, "x-request-id"),
        None,
        "the client's id is kept"
    );
    assert_eq!(
        replies[1],
        Reply::RequestBody {
            chunk: CHAT.to_vec(),
            end_of_stream: true
        }
    );
    assert_eq!(replies.len(), 2);
    assert_eq!(stream.request_id(), Some("req-1"));
    assert_eq!(stream.models(), (Some("base"), Some("base")));
}

#[test]
fn large_bodies_go_back_in_62k_chunks() {
    let world = World::new(1);
    let prompt = "x".repeat(150_000);
    let body = format!(r#"{{"model":"base","prompt":"{prompt}"}}"#);
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/completions"),
        None,
        body.as_bytes(),
    );
    let chunks: Vec<(usize, bool)> = replies[1..]
        .iter()
        .map(|r| match r {
            Reply::RequestBody {
                chunk,
                end_of_stream,
            } => (chunk.len(), *end_of_stream),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(chunks.len(), 3);
    assert!(chunks.iter().all(|(len, _)| *len <= MAX_CHUNK_BYTES));
    assert_eq!(chunks.iter().map(|(len, _)| len).sum::<usize>(), body.len());
    assert_eq!(
        chunks.iter().map(|(_, eos)| *eos).collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[test]
fn bodiless_requests_go_to_a_random_endpoint() {
    let world = World::new(2);
    let mut stream = RequestStream::new();
    let hdrs: Vec<(&str, &[u8])> = vec![(":path", b"/v1/models"), (":method", b"GET")];
    let replies = stream
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: true,
                subset: None,
            },
            &world.env(),
        )
        .unwrap()
        .replies();
    let reply = routing(&replies);
    assert!(header(reply, DESTINATION_ENDPOINT_HEADER).is_some());
    let id = header(reply, "x-request-id").expect("an id is generated when absent");
    assert_eq!((id.len(), &id[14..15]), (36, "4"));

    let empty = World::new(0);
    let replies = RequestStream::new()
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: true,
                subset: None,
            },
            &empty.env(),
        )
        .unwrap()
        .replies();
    assert_eq!(immediate(&replies).0, 500);
}

#[test]
fn bad_bodies_are_400_with_upstreams_wording() {
    let world = World::new(1);
    for body in [
        &b"not json"[..],
        b"",
        b"[1,2]",
        br#"{"prompt":"no model"}"#,
        br#"{"model":""}"#,
        br#"{"model":7}"#,
    ] {
        let replies = world.request(
            &mut RequestStream::new(),
            &headers("/v1/completions"),
            None,
            body,
        );
        let (status, text) = immediate(&replies);
        assert_eq!(status, 400, "{body:?}");
        assert!(text.starts_with("inference error: BadRequest - "), "{text}");
    }
}

#[test]
fn no_capacity_maps_to_503_and_429() {
    let world = World::new(2);
    let empty: Vec<String> = Vec::new();
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/chat/completions"),
        Some(&empty),
        CHAT,
    );
    let (status, text) = immediate(&replies);
    assert_eq!(status, 503);
    assert!(
        text.starts_with("inference error: ServiceUnavailable - "),
        "{text}"
    );
    let replies = World::new(0).request(
        &mut RequestStream::new(),
        &headers("/v1/chat/completions"),
        None,
        CHAT,
    );
    assert_eq!(immediate(&replies).0, 503);

    let mut world = World::new(2);
    world.scheduler = Scheduler::new(
        crate::scheduling::SchedulerConfig::from_yaml(
            "plugins: [{type: header-based-testing-filter}]\nschedulingProfiles: [{name: p, plugins: [{pluginRef: header-based-testing-filter}]}]\n",
        )
        .unwrap(),
    );
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((TEST_ENDPOINT_SELECTION_HEADER, b"192.0.2.1"));
    let replies = world.request(&mut RequestStream::new(), &hdrs, None, CHAT);
    let (status, text) = immediate(&replies);
    assert_eq!(status, 429);
    assert!(
        text.starts_with("inference error: ResourceExhausted - "),
        "{text}"
    );
}

#[test]
fn subset_hint_pins_and_can_be_disabled() {
    let world = World::new(3);
    let target = world.snapshot.endpoints[2].address.to_string();
    let hint = vec![target.clone()];
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/chat/completions"),
        Some(&hint),
        CHAT,
    );
    assert_eq!(
        header(routing(&replies), DESTINATION_ENDPOINT_HEADER),
        Some(target.as_str())
    );
    // With the filter disabled an empty hint does not make the request fail.
    let env = Env {
        disable_subset_filter: true,
        ..world.env()
    };
    let mut stream = RequestStream::new();
    let none: Vec<String> = Vec::new();
    let hdrs = headers("/v1/chat/completions");
    stream
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: false,
                subset: Some(&none),
            },
            &env,
        )
        .unwrap()
        .replies();
    let replies = stream
        .on_event(
            Event::RequestBody {
                chunk: CHAT,
                end_of_stream: true,
            },
            &env,
        )
        .unwrap()
        .replies();
    assert!(matches!(replies[0], Reply::RequestHeaders(_)));
}

#[test]
fn sheddable_requests_are_rejected_when_saturated() {
    let mut world = World::new(2);
    world.snapshot.objectives.insert("batch".into(), -1);
    world.snapshot.objectives.insert("online".into(), 5);
    // Never scraped: stale metrics count as saturated.
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((INFERENCE_OBJECTIVE_HEADER, b"batch"));
    let replies = world.request(&mut RequestStream::new(), &hdrs, None, CHAT);
    assert_eq!(immediate(&replies).0, 429);
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((INFERENCE_OBJECTIVE_HEADER, b"online"));
    let replies = world.request(&mut RequestStream::new(), &hdrs, None, CHAT);
    assert!(matches!(replies[0], Reply::RequestHeaders(_)));
    // Fresh, idle metrics: not saturated, so the sheddable request passes.
    let now = Instant::now();
    for e in &mut world.snapshot.endpoints {
        e.scraped_at = Some(now);
    }
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((INFERENCE_OBJECTIVE_HEADER, b"batch"));
    let env = Env { now, ..world.env() };
    let mut stream = RequestStream::new();
    stream
        .on_event(
            Event::RequestHeaders {
                headers: &hdrs,
                end_of_stream: false,
                subset: None,
            },
            &env,
        )
        .unwrap()
        .replies();
    let replies = stream
        .on_event(
            Event::RequestBody {
                chunk: CHAT,
                end_of_stream: true,
            },
            &env,
        )
        .unwrap()
        .replies();
    assert!(matches!(replies[0], Reply::RequestHeaders(_)));
}

#[test]
fn out_of_order_messages_are_protocol_errors() {
    let world = World::new(1);
    let env = world.env();
    let err = RequestStream::new()
        .on_event(
            Event::RequestBody {
                chunk: b"{}",
                end_of_stream: true,
            },
            &env,
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("request body chunk") && text.contains("processing_mode"),
        "{text}"
    );
    let mut done = RequestStream::new();
    let replies = world.request(&mut done, &headers("/v1/completions"), None, b"bad");
    assert_eq!(immediate(&replies).0, 400);
    assert!(done.on_event(Event::ResponseTrailers, &env).is_err());
}

#[test]
fn ipv6_destinations_are_bracketed() {
    let mut world = World::new(0);
    world.snapshot.endpoints.push(Endpoint::new(
        "v6",
        "v6",
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 8000),
    ));
    let replies = world.request(
        &mut RequestStream::new(),
        &headers("/v1/chat/completions"),
        None,
        CHAT,
    );
    let reply = routing(&replies);
    assert_eq!(
        header(reply, DESTINATION_ENDPOINT_HEADER),
        Some("[::1]:8000")
    );
    assert_eq!(reply.destination_metadata.as_deref(), Some("[::1]:8000"));
}

mod body;
mod budget;
mod flow;
mod health;
mod report;
mod response;
mod trailers;
