//! The admitting phase: the stream hands the shell a `FlowRequest` as
//! `Step::Admit`, then schedules on an admission or answers a rejection with
//! its refusal; the body is parsed once either way.

use std::sync::Arc;
use std::time::Duration;

use switchyard_api::protocol::{INFERENCE_FAIRNESS_ID_HEADER, INFERENCE_OBJECTIVE_HEADER};

use super::*;
use crate::datastore::Datastore;
use crate::flow::{
    Detector, FlowControlConfig, FlowController, FlowMetrics, Outcome, SnapshotProbe,
};

const MARKER: &str = "x-gateway-trusted";

/// Sends headers and the whole body; returns the step the body ends with.
fn send(stream: &mut RequestStream, hdrs: &[(&str, &[u8])], env: &Env<'_>) -> Step {
    let event = Event::RequestHeaders {
        headers: hdrs,
        end_of_stream: false,
        subset: None,
    };
    assert!(stream.on_event(event, env).unwrap().replies().is_empty());
    let body = Event::RequestBody {
        chunk: CHAT,
        end_of_stream: true,
    };
    stream.on_event(body, env).unwrap()
}

/// The admission request of a step that must wait for admission.
fn admit(step: Step) -> FlowRequest {
    match step {
        Step::Admit(request) => request,
        Step::Replies(replies) => panic!("expected an admission request, got {replies:?}"),
    }
}

fn flow_headers() -> Vec<(&'static str, &'static [u8])> {
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((INFERENCE_OBJECTIVE_HEADER, b"chat"));
    hdrs.push((INFERENCE_FAIRNESS_ID_HEADER, b"tenant-a"));
    hdrs.push(("x-llm-d-inference-ttl", b"1500ms"));
    hdrs.push((MARKER, b"1"));
    hdrs
}

#[tokio::test]
async fn an_admitted_request_is_picked_and_its_flow_headers_stripped() {
    let mut world = World::new(2);
    world.snapshot.objectives.insert("chat".into(), 1);
    // Freshly scraped, idle endpoints are not saturated (never-scraped ones would be).
    let now = std::time::Instant::now();
    for endpoint in &mut world.snapshot.endpoints {
        endpoint.scraped_at = Some(now);
    }
    let trust = HeaderTrust::WhenMarked(MARKER.into());
    let env = Env {
        header_trust: &trust,
        flow_control: true,
        now,
        ..world.env()
    };
    let mut stream = RequestStream::new();
    let hdrs = flow_headers();
    let parses_before = crate::stream::body::parse_count::get();
    let request = admit(send(&mut stream, &hdrs, &env));
    assert_eq!(
        request,
        FlowRequest {
            fairness_id: "tenant-a".into(),
            priority: 1,
            byte_size: CHAT.len() as u64,
            ttl: Some(Duration::from_millis(1500)),
        }
    );

    // A real controller over a real datastore admits it.
    let datastore = Arc::new(Datastore::new(world.snapshot.clone()));
    let config = Arc::new(FlowControlConfig {
        enabled: true,
        ..FlowControlConfig::default()
    });
    let probe = SnapshotProbe::new(
        Arc::clone(&datastore),
        Detector::new(config.detector.clone()),
    );
    let metrics = Arc::new(FlowMetrics::default());
    let (controller, actor) = FlowController::spawn(config, probe, Arc::clone(&metrics));
    let admission = controller.admit(request).await.unwrap();
    let replies = stream
        .on_event(Event::Admission(Ok(admission)), &env)
        .unwrap()
        .replies();
    assert_eq!(
        crate::stream::body::parse_count::get() - parses_before,
        1,
        "the body is parsed once, not again after admission"
    );
    let routing = routing(&replies);
    assert!(header(routing, DESTINATION_ENDPOINT_HEADER).is_some());
    for name in FlowHeaders::STRIPPED.into_iter().chain([MARKER]) {
        assert!(
            routing.remove_headers.iter().any(|h| h == name),
            "{name} must not reach the model server"
        );
    }
    assert!(matches!(
        replies.last(),
        Some(Reply::RequestBody {
            end_of_stream: true,
            ..
        })
    ));
    assert!(stream.pick().is_some());
    assert_eq!(metrics.count(Outcome::Dispatched), 1);
    // A second outcome is a shell bug, reported as an error rather than ignored.
    let again = Rejection::new(Outcome::RejectedOther, 1, Duration::ZERO);
    assert!(stream.on_event(Event::Admission(Err(again)), &env).is_err());
    controller.shutdown();
    actor.await.unwrap();
}

#[test]
fn a_rejection_ends_the_request_with_its_status_body_and_reason() {
    let mut world = World::new(2);
    world.snapshot.objectives.insert("batch".into(), -1);
    let env = Env {
        flow_control: true,
        ..world.env()
    };
    let mut hdrs = headers("/v1/chat/completions");
    hdrs.push((INFERENCE_OBJECTIVE_HEADER, b"batch"));
    let mut stream = RequestStream::new();
    let request = admit(send(&mut stream, &hdrs, &env));
    assert_eq!(request.priority, -1);
    assert_eq!(request.fairness_id, "default-flow");
    for (outcome, status, reason) in [
        (Outcome::RejectedSaturated, 429, "rejected-saturated"),
        (Outcome::EvictedTtl, 429, "rejected-ttl-expired"),
        (Outcome::RejectedNoEndpoints, 503, "rejected-no-endpoints"),
    ] {
        let mut stream = RequestStream::new();
        admit(send(&mut stream, &hdrs, &env));
        let rejection = Rejection::new(outcome, -1, Duration::from_millis(20));
        let replies = stream
            .on_event(Event::Admission(Err(rejection.clone())), &env)
            .unwrap()
            .replies();
        match replies.as_slice() {
            [Reply::Refuse(refusal)] => {
                assert_eq!(refusal.status(), status);
                let code = rejection.error_code().as_str();
                assert_eq!(
                    refusal.text(),
                    format!("inference error: {code} - {rejection}")
                );
                assert_eq!(refusal.reason, reason);
            }
            other => panic!("expected one refusal, got {other:?}"),
        }
        assert!(stream.is_done());
        assert!(stream.pick().is_none());
    }
}

#[test]
fn untrusted_flow_headers_are_ignored_but_still_stripped() {
    let mut world = World::new(2);
    world.snapshot.objectives.insert("chat".into(), 1);
    let trust = HeaderTrust::WhenMarked(MARKER.into());
    let env = Env {
        header_trust: &trust,
        flow_control: true,
        ..world.env()
    };
    let hdrs: Vec<_> = flow_headers()
        .into_iter()
        .filter(|(name, _)| *name != MARKER)
        .collect();
    let mut stream = RequestStream::new();
    let request = admit(send(&mut stream, &hdrs, &env));
    assert_eq!(
        (request.fairness_id.as_str(), request.priority, request.ttl),
        ("default-flow", 0, None)
    );
}

#[test]
fn bodiless_requests_are_admitted_and_flow_control_off_skips_admission() {
    let mut world = World::new(2);
    world.snapshot.objectives.insert("chat".into(), 1);
    let env = Env {
        flow_control: true,
        ..world.env()
    };
    let hdrs = flow_headers();
    let mut stream = RequestStream::new();
    let event = Event::RequestHeaders {
        headers: &hdrs,
        end_of_stream: true,
        subset: None,
    };
    // Body-less requests pass flow control too (L6), with no bytes.
    let request = admit(stream.on_event(event, &env).unwrap());
    assert_eq!((request.priority, request.byte_size), (1, 0));

    let off = world.env();
    let mut stream = RequestStream::new();
    let replies = send(&mut stream, &hdrs, &off).replies();
    assert!(matches!(replies[0], Reply::RequestHeaders(_)));
    // Stripped even without flow control: the model server never sees them.
    assert!(
        routing(&replies)
            .remove_headers
            .iter()
            .any(|h| h == INFERENCE_FAIRNESS_ID_HEADER)
    );
}
