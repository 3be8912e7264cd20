//! The response path feeds endpoint health (review findings H6, L7): 5xx answers eject the
//! endpoint that failed, and the endpoint the proxy reports as served carries the load.

use super::*;
use crate::datastore::health::CONSECUTIVE_FAILURES;

/// Routes one chat request and answers it with `status`, as the proxy reports `served`;
/// returns the endpoint the request was routed to.
fn answer(world: &World, status: &[u8], served: ServedEndpoint<'_>) -> (String, RequestStream) {
    let mut stream = RequestStream::new();
    let replies = world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    let destination = header(routing(&replies), DESTINATION_ENDPOINT_HEADER)
        .unwrap()
        .to_owned();
    let resp: Vec<(&str, &[u8])> = vec![(":status", status)];
    stream
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
    (destination, stream)
}

#[test]
fn h6_5xx_answers_on_the_response_path_eject_the_endpoint_that_failed() {
    let world = World::new(3);
    let now = Instant::now();
    let mut failures = std::collections::HashMap::<String, u32>::new();
    // Envoy's local reply for a refused connection carries no served endpoint: the
    // failure counts on the endpoint the request was routed to.
    let ejected = loop {
        let (destination, _) = answer(&world, b"503", ServedEndpoint::NoServedKey);
        let count = failures.entry(destination.clone()).or_default();
        *count += 1;
        assert!(*count <= CONSECUTIVE_FAILURES, "{failures:?}");
        let endpoint = world
            .snapshot
            .endpoint_at(destination.parse().unwrap())
            .unwrap();
        if endpoint.is_ejected(now) {
            break destination;
        }
    };
    assert_eq!(failures[&ejected], CONSECUTIVE_FAILURES);
    for _ in 0..30 {
        let (destination, _) = answer(&world, b"200", ServedEndpoint::NoServedKey);
        assert_ne!(destination, ejected);
    }
}

#[test]
fn h6_client_errors_and_successes_never_eject() {
    let world = World::new(1);
    for status in [&b"200"[..], b"404", b"429", b"400"] {
        for _ in 0..CONSECUTIVE_FAILURES {
            answer(&world, status, ServedEndpoint::NoServedKey);
        }
    }
    assert!(!world.snapshot.endpoints[0].is_ejected(Instant::now()));
}

#[test]
fn l7_the_reported_served_endpoint_carries_the_request_when_it_was_a_fallback() {
    let mut world = World::new(2);
    world.scheduler = Scheduler::new(
        crate::scheduling::SchedulerConfig::from_yaml(
            "plugins: [{type: queue-scorer}, \
             {type: max-score-picker, parameters: {maxNumOfEndpoints: 2}}]\n\
             schedulingProfiles: [{name: p, plugins: [{pluginRef: queue-scorer}, \
             {pluginRef: max-score-picker}]}]\n",
        )
        .unwrap(),
    );
    let mut stream = RequestStream::new();
    world.request(&mut stream, &headers("/v1/chat/completions"), None, CHAT);
    let picked = stream.pick().unwrap().endpoints.clone();
    let [target, fallback] = picked.as_slice() else {
        panic!("{picked:?}")
    };
    let load = |a: &SocketAddr| world.snapshot.endpoint_at(*a).unwrap().load.in_flight();
    assert_eq!((load(target), load(fallback)), (1, 0));
    let served = fallback.to_string();
    let resp: Vec<(&str, &[u8])> = vec![(":status", b"200")];
    stream
        .on_event(
            Event::ResponseHeaders {
                headers: &resp,
                end_of_stream: false,
                served: ServedEndpoint::Reported(&served),
            },
            &world.env(),
        )
        .unwrap()
        .replies();
    assert_eq!((load(target), load(fallback)), (0, 1));
    drop(stream);
    assert_eq!((load(target), load(fallback)), (0, 0));
}
