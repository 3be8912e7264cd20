//! The trust boundary end to end through the request state machine: who may steer, what is
//! bounded, and what never reaches a model server.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use switchyard_api::protocol::{
    DESTINATION_ENDPOINT_HEADER, INFERENCE_FAIRNESS_ID_HEADER, INFERENCE_OBJECTIVE_HEADER,
    MODEL_NAME_REWRITE_HEADER,
};
use switchyard_api::rewrite::{Match, ModelMatch};
use switchyard_api::{
    InferenceModelRewriteRule, InferenceModelRewriteSpec, PoolObjectReference, TargetModel,
};

use super::*;
use crate::datastore::EndpointMetrics;
use crate::flow::{FlowHeaders, FlowRequest};
use crate::scheduling::Scheduler;
use crate::scheduling::tests::pool;
use crate::stream::{Entropy, Env, Event, HeadersReply, Reply, RequestStream, Step};

const CHAT: &[u8] = br#"{"model":"base","messages":[{"role":"user","content":"hi"}]}"#;
const MARKER: &str = "x-switchyard-trusted-caller";

#[derive(Debug)]
struct FirstEndpoint;

impl Entropy for FirstEndpoint {
    fn index_below(&self, _len: usize) -> usize {
        0
    }

    fn uuid_bytes(&self) -> [u8; 16] {
        [7; 16]
    }
}

/// A one-endpoint pool whose rewrite rule knows the model `canary`.
fn snapshot() -> PoolSnapshot {
    let mut snapshot = pool(&[EndpointMetrics::default()]);
    snapshot.rewrites = vec![Arc::new(InferenceModelRewriteSpec {
        pool_ref: PoolObjectReference {
            group: "inference.networking.k8s.io".into(),
            kind: "InferencePool".into(),
            name: "p".into(),
        },
        rules: vec![InferenceModelRewriteRule {
            matches: vec![Match {
                model: ModelMatch::exact("legacy"),
            }],
            targets: vec![TargetModel {
                model_rewrite: "canary".into(),
                weight: None,
            }],
        }],
    })];
    snapshot.objectives.insert("premium".into(), 100);
    snapshot
}

/// No budget refusals here: these tests are about trust.
static UNLIMITED: std::sync::LazyLock<switchyard_runtime::budget::ByteBudget> =
    std::sync::LazyLock::new(switchyard_runtime::budget::ByteBudget::unlimited);

fn env<'a>(
    snapshot: &'a PoolSnapshot,
    scheduler: &'a Scheduler,
    trust: &'a HeaderTrust,
    flow_control: bool,
) -> Env<'a> {
    Env {
        snapshot,
        scheduler,
        now: Instant::now(),
        disable_subset_filter: false,
        header_trust: trust,
        flow_control,
        rewrite_session_header: None,
        max_body_bytes: 1 << 20,
        budget: &UNLIMITED,
        max_response_buffer_bytes: 1 << 20,
        entropy: &FirstEndpoint,
    }
}

/// Sends `headers` and [`CHAT`]; returns the machine and the step the body produced.
fn send(headers: &[(&str, &[u8])], env: &Env<'_>) -> (RequestStream, Step) {
    let mut stream = RequestStream::new();
    let first = stream
        .on_event(
            Event::RequestHeaders {
                headers,
                end_of_stream: false,
                subset: None,
            },
            env,
        )
        .unwrap();
    assert_eq!(first, Step::Replies(Vec::new()));
    let step = stream
        .on_event(
            Event::RequestBody {
                chunk: CHAT,
                end_of_stream: true,
            },
            env,
        )
        .unwrap();
    (stream, step)
}

fn routing(step: &Step) -> &HeadersReply {
    match step {
        Step::Replies(replies) => match replies.first() {
            Some(Reply::RequestHeaders(reply)) => reply,
            other => panic!("expected the routing headers, got {other:?}"),
        },
        Step::Admit(request) => panic!("expected replies, got an admission of {request:?}"),
    }
}

fn steering(rewrite: &'static [u8]) -> Vec<(&'static str, &'static [u8])> {
    vec![
        (":path", b"/v1/chat/completions"),
        (MODEL_NAME_REWRITE_HEADER, rewrite),
        (INFERENCE_OBJECTIVE_HEADER, b"premium"),
        (INFERENCE_FAIRNESS_ID_HEADER, b"tenant-a"),
        (DESTINATION_ENDPOINT_HEADER, b"203.0.113.9:80"),
    ]
}

#[test]
fn h2_an_untrusted_forced_rewrite_is_ignored_and_stripped() {
    let (snapshot, scheduler) = (snapshot(), Scheduler::default());
    for trust in [HeaderTrust::Never, HeaderTrust::WhenMarked(MARKER.into())] {
        let env = env(&snapshot, &scheduler, &trust, false);
        let before = refused_count(Refused::Untrusted);
        // `canary` is a model the pool knows: only the missing trust refuses it.
        let (stream, step) = send(&steering(b"canary"), &env);
        assert_eq!(stream.models(), (Some("base"), Some("base")), "{trust:?}");
        let reply = routing(&step);
        assert!(
            reply
                .remove_headers
                .iter()
                .any(|h| h == MODEL_NAME_REWRITE_HEADER),
            "{reply:?}"
        );
        assert!(refused_count(Refused::Untrusted) > before);
    }
}

#[test]
fn h2_a_trusted_forced_rewrite_must_name_a_model_the_pool_knows() {
    let (snapshot, scheduler) = (snapshot(), Scheduler::default());
    let trust = HeaderTrust::WhenMarked(MARKER.into());
    let env = env(&snapshot, &scheduler, &trust, false);
    let mut marked = steering(b"anything-at-all");
    marked.push((MARKER, b"1"));
    let before = refused_count(Refused::UnknownRewrite);
    let (stream, step) = send(&marked, &env);
    assert_eq!(stream.models(), (Some("base"), Some("base")));
    assert!(refused_count(Refused::UnknownRewrite) > before);
    let reply = routing(&step);
    for stripped in [MODEL_NAME_REWRITE_HEADER, MARKER] {
        assert!(
            reply.remove_headers.iter().any(|h| h == stripped),
            "{stripped}"
        );
    }
    let long = vec![b'a'; MAX_MODEL_NAME_BYTES + 1];
    assert!(!pool_knows_model(
        &snapshot,
        std::str::from_utf8(&long).unwrap()
    ));

    let mut marked = steering(b"canary");
    marked.push((MARKER, b"1"));
    let (stream, _) = send(&marked, &env);
    assert_eq!(stream.models(), (Some("base"), Some("canary")));
}

#[test]
fn h3_untrusted_callers_choose_no_priority_fairness_or_ttl() {
    let (snapshot, scheduler) = (snapshot(), Scheduler::default());
    let trust = HeaderTrust::Never;
    let env = env(&snapshot, &scheduler, &trust, true);
    let mut headers = steering(b"");
    headers.push(("x-llm-d-inference-ttl", b"1h"));
    let (stream, step) = send(&headers, &env);
    assert_eq!(stream.objective(), None);
    match step {
        Step::Admit(FlowRequest {
            fairness_id,
            priority,
            ttl,
            ..
        }) => assert_eq!(
            (fairness_id.as_str(), priority, ttl),
            ("default-flow", 0, None)
        ),
        Step::Replies(replies) => panic!("expected an admission, got {replies:?}"),
    }
}

#[test]
fn h3_fairness_ids_are_bounded_in_length_and_charset() {
    let longest = "t".repeat(MAX_FAIRNESS_ID_BYTES);
    let too_long = "t".repeat(MAX_FAIRNESS_ID_BYTES + 1);
    let cases: [(&str, &str); 5] = [
        ("tenant-a/team_1:x.y", "tenant-a/team_1:x.y"),
        (&longest, &longest),
        (&too_long, "default-flow"),
        ("tenant a", "default-flow"),
        ("tenänt", "default-flow"),
    ];
    for (sent, read) in cases {
        let headers: Vec<(&str, &[u8])> = vec![(INFERENCE_FAIRNESS_ID_HEADER, sent.as_bytes())];
        let before = refused_count(Refused::FairnessId);
        let flow = FlowHeaders::read(&headers, &HeaderTrust::Always);
        assert_eq!(flow.fairness_id, read, "{sent}");
        if sent != read {
            assert!(refused_count(Refused::FairnessId) > before, "{sent}");
        }
    }
}

#[test]
fn l10_a_client_sent_destination_is_overwritten_on_every_routed_path() {
    let (snapshot, scheduler) = (snapshot(), Scheduler::default());
    let trust = HeaderTrust::Always;
    let env = env(&snapshot, &scheduler, &trust, false);
    let picked = snapshot.endpoints[0].address.to_string();
    let (_, step) = send(&steering(b""), &env);
    let destination = |reply: &HeadersReply| {
        reply
            .set_headers
            .iter()
            .filter(|(k, _)| k == DESTINATION_ENDPOINT_HEADER)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(destination(routing(&step)), vec![picked.clone()]);
    // A body-less request too.
    let mut stream = RequestStream::new();
    let step = stream
        .on_event(
            Event::RequestHeaders {
                headers: &steering(b""),
                end_of_stream: true,
                subset: None,
            },
            &env,
        )
        .unwrap();
    assert_eq!(destination(routing(&step)), vec![picked]);
}

#[test]
fn l16_steering_headers_and_the_marker_are_all_stripped() {
    for name in FlowHeaders::STRIPPED {
        assert!(STRIPPED_HEADERS.contains(&name), "{name}");
    }
    assert!(STRIPPED_HEADERS.contains(&MODEL_NAME_REWRITE_HEADER));
    // The subset hint is no header at all: a client header of the key's name is ignored.
    let (snapshot, scheduler) = (snapshot(), Scheduler::default());
    let trust = HeaderTrust::Always;
    let env = env(&snapshot, &scheduler, &trust, false);
    let headers: Vec<(&str, &[u8])> = vec![
        (":path", b"/v1/chat/completions"),
        ("x-gateway-destination-endpoint-subset", b"203.0.113.9:80"),
    ];
    let (_, step) = send(&headers, &env);
    let reply = routing(&step);
    assert_eq!(
        reply.destination_metadata.as_deref(),
        Some(snapshot.endpoints[0].address.to_string().as_str())
    );
}
