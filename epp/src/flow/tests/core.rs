//! The pure core: ordering, fairness, TTLs, shedding, caps, cancellation.

use std::time::Instant;

use super::*;

/// Pops everything, returning the payloads in dispatch order.
fn drain_order<T: Clone>(queues: &mut FlowQueues<T>) -> Vec<T> {
    std::iter::from_fn(|| queues.pop_next().map(|q| q.payload)).collect()
}

fn enqueue_all(
    queues: &mut FlowQueues<&'static str>,
    items: &[(&str, i64, &'static str)],
    now: Instant,
) {
    for (i, (flow, priority, label)) in items.iter().enumerate() {
        queues
            .enqueue(i as u64, request(flow, *priority, 10), *label, now, OPEN)
            .unwrap();
    }
}

#[test]
fn higher_priority_bands_dispatch_first() {
    let mut queues = FlowQueues::new(config(|_| {}));
    let now = Instant::now();
    enqueue_all(
        &mut queues,
        &[
            ("a", 0, "p0"),
            ("a", 1, "p1-first"),
            ("b", -1, "p-1"),
            ("b", 1, "p1-second"),
            ("a", 7, "p7"),
        ],
        now,
    );
    assert_eq!(queues.head_priority(), Some(7));
    assert_eq!(
        drain_order(&mut queues),
        ["p7", "p1-first", "p1-second", "p0", "p-1"]
    );
    assert!(queues.is_empty());
    assert_eq!((queues.len(), queues.bytes()), (0, 0));
}

#[test]
fn global_strict_fairness_is_one_fifo_across_flows() {
    let mut queues = FlowQueues::new(config(|_| {}));
    enqueue_all(
        &mut queues,
        &[
            ("a", 0, "a1"),
            ("a", 0, "a2"),
            ("b", 0, "b1"),
            ("a", 0, "a3"),
        ],
        Instant::now(),
    );
    assert_eq!(drain_order(&mut queues), ["a1", "a2", "b1", "a3"]);
}

#[test]
fn round_robin_fairness_takes_turns_between_flows() {
    let mut queues = FlowQueues::new(config(|c| c.default_band.fairness = Fairness::RoundRobin));
    enqueue_all(
        &mut queues,
        &[
            ("a", 0, "a1"),
            ("a", 0, "a2"),
            ("a", 0, "a3"),
            ("b", 0, "b1"),
            ("b", 0, "b2"),
            ("c", 0, "c1"),
        ],
        Instant::now(),
    );
    assert_eq!(
        drain_order(&mut queues),
        ["a1", "b1", "c1", "a2", "b2", "a3"]
    );
}

#[test]
fn round_robin_new_flow_joins_at_the_back() {
    let mut queues = FlowQueues::new(config(|c| c.default_band.fairness = Fairness::RoundRobin));
    let now = Instant::now();
    enqueue_all(
        &mut queues,
        &[("a", 0, "a1"), ("a", 0, "a2"), ("b", 0, "b1")],
        now,
    );
    assert_eq!(queues.pop_next().unwrap().payload, "a1");
    queues
        .enqueue(10, request("c", 0, 1), "c1", now, OPEN)
        .unwrap();
    assert_eq!(drain_order(&mut queues), ["b1", "a2", "c1"]);
}

#[test]
fn earliest_deadline_ordering_serves_the_closest_deadline_first() {
    let mut queues = FlowQueues::new(config(|c| {
        c.default_band.ordering = Ordering::EarliestDeadline;
        c.default_request_ttl = None;
    }));
    let now = Instant::now();
    let with_ttl = |ttl: Option<u64>| FlowRequest {
        ttl: ttl.map(secs),
        ..request("a", 0, 1)
    };
    queues
        .enqueue(1, with_ttl(None), "no-deadline", now, OPEN)
        .unwrap();
    queues
        .enqueue(2, with_ttl(Some(10)), "ten", now, OPEN)
        .unwrap();
    queues
        .enqueue(3, with_ttl(Some(1)), "one", now, OPEN)
        .unwrap();
    queues
        .enqueue(4, with_ttl(None), "no-deadline-2", now, OPEN)
        .unwrap();
    assert_eq!(
        drain_order(&mut queues),
        ["one", "ten", "no-deadline", "no-deadline-2"]
    );
}

#[test]
fn requests_expire_at_their_ttl_with_the_regime_outcome() {
    let mut queues = FlowQueues::new(config(|c| {
        c.default_request_ttl = Some(secs(60));
        c.no_endpoint_request_ttl = Some(secs(5));
    }));
    let t0 = Instant::now();
    queues.enqueue(1, request("a", 0, 1), (), t0, OPEN).unwrap();
    queues
        .enqueue(2, request("a", 0, 1), (), t0 + secs(1), OPEN)
        .unwrap();
    assert_eq!(queues.next_expiry(true), Some(t0 + secs(60)));
    assert_eq!(queues.next_expiry(false), Some(t0 + secs(5)));

    let mut out = Vec::new();
    queues.expire(t0 + secs(59), true, &mut out);
    assert!(out.is_empty(), "nothing is due before the TTL");
    queues.expire(t0 + secs(60), true, &mut out);
    assert_eq!(
        out.iter().map(|(q, o)| (q.id, *o)).collect::<Vec<_>>(),
        [(1, Outcome::EvictedTtl)]
    );

    // The pool empties: the no-endpoint budget applies to what is left.
    out.clear();
    queues.expire(t0 + secs(61), false, &mut out);
    assert_eq!(
        out.iter().map(|(q, o)| (q.id, *o)).collect::<Vec<_>>(),
        [(2, Outcome::EvictedNoEndpoints)]
    );
    assert!(queues.is_empty());
    assert_eq!(queues.next_expiry(true), None);
}

#[test]
fn a_request_ttl_shortens_but_never_lengthens_the_band_ttl() {
    let cfg = config(|c| {
        c.default_request_ttl = Some(secs(60));
        c.bands.insert(
            5,
            BandConfig {
                request_ttl: Some(None),
                ..BandConfig::default()
            },
        );
    });
    assert_eq!(cfg.request_ttl(0, Some(secs(2))), Some(secs(2)));
    assert_eq!(cfg.request_ttl(0, Some(secs(600))), Some(secs(60)));
    assert_eq!(
        cfg.request_ttl(0, Some(Duration::ZERO)),
        Some(secs(60)),
        "0 is ignored"
    );
    assert_eq!(cfg.request_ttl(5, None), None, "the band says unbounded");
    assert_eq!(
        cfg.request_ttl(5, Some(secs(3))),
        Some(secs(3)),
        "a header bounds an unbounded band"
    );
}

#[test]
fn unbounded_ttl_never_expires() {
    let mut queues = FlowQueues::new(config(|c| {
        c.default_request_ttl = None;
        c.no_endpoint_request_ttl = None;
    }));
    let t0 = Instant::now();
    queues.enqueue(1, request("a", 0, 1), (), t0, OPEN).unwrap();
    let mut out = Vec::new();
    queues.expire(t0 + secs(1_000_000), true, &mut out);
    queues.expire(t0 + secs(1_000_000), false, &mut out);
    assert!(out.is_empty());
    assert_eq!(queues.next_expiry(true), None);
}

#[test]
fn sheddable_requests_are_refused_while_saturated_or_empty() {
    let mut queues = FlowQueues::new(config(|_| {}));
    let now = Instant::now();
    let (rejection, payload) = queues
        .enqueue(1, request("a", -1, 1), "shed", now, FULL)
        .unwrap_err();
    assert_eq!(payload, "shed", "the payload comes back with the refusal");
    assert_eq!(rejection.outcome, Outcome::RejectedSaturated);
    assert_eq!(
        (rejection.status(), rejection.dropped_reason()),
        (429, "rejected-saturated")
    );

    let (rejection, _) = queues
        .enqueue(2, request("a", -5, 1), "gone", now, EMPTY)
        .unwrap_err();
    assert_eq!(
        (rejection.status(), rejection.dropped_reason()),
        (503, "rejected-no-endpoints")
    );

    // Non-sheddable work waits, even with no endpoints (scale from zero).
    queues
        .enqueue(3, request("a", 0, 1), "wait", now, FULL)
        .unwrap();
    queues
        .enqueue(4, request("a", 0, 1), "wait-empty", now, EMPTY)
        .unwrap();
    // Sheddable work is queued while the pool has room.
    queues
        .enqueue(5, request("a", -1, 1), "room", now, OPEN)
        .unwrap();
    assert_eq!(queues.len(), 3);
}

#[test]
fn shedding_removes_only_negative_bands() {
    let mut queues = FlowQueues::new(config(|_| {}));
    let now = Instant::now();
    enqueue_all(
        &mut queues,
        &[
            ("a", -1, "m1"),
            ("b", 0, "zero"),
            ("a", -3, "m3"),
            ("c", 2, "two"),
            ("b", -1, "m1b"),
        ],
        now,
    );
    let mut shed = Vec::new();
    queues.shed_sheddable(1.0, &mut shed);
    let mut labels: Vec<_> = shed.iter().map(|q| q.payload).collect();
    labels.sort_unstable();
    assert_eq!(labels, ["m1", "m1b", "m3"]);
    assert_eq!(drain_order(&mut queues), ["two", "zero"]);
}

#[test]
fn band_caps_refuse_with_429_and_name_the_cap() {
    let mut queues = FlowQueues::new(config(|c| {
        c.bands.insert(
            0,
            BandConfig {
                max_requests: 2,
                max_bytes: 100,
                ..BandConfig::default()
            },
        );
    }));
    let now = Instant::now();
    queues
        .enqueue(1, request("a", 0, 40), (), now, OPEN)
        .unwrap();
    queues
        .enqueue(2, request("b", 0, 40), (), now, OPEN)
        .unwrap();
    let (rejection, ()) = queues
        .enqueue(3, request("a", 0, 1), (), now, OPEN)
        .unwrap_err();
    assert_eq!(rejection.outcome, Outcome::RejectedCapacity);
    assert_eq!(rejection.limit, Some(CapacityLimit::BandRequests(2)));
    assert_eq!(
        (rejection.status(), rejection.dropped_reason()),
        (429, "rejected-saturated")
    );
    assert!(
        rejection
            .refusal()
            .text()
            .starts_with("inference error: ResourceExhausted - queue at capacity: priority band 0")
    );
    // Other bands are not affected by band 0's cap.
    queues
        .enqueue(4, request("a", 1, 40), (), now, OPEN)
        .unwrap();

    // Making room admits again; bytes are checked too.
    queues.cancel(2).unwrap();
    let (rejection, ()) = queues
        .enqueue(5, request("a", 0, 61), (), now, OPEN)
        .unwrap_err();
    assert_eq!(rejection.limit, Some(CapacityLimit::BandBytes(100)));
    queues
        .enqueue(6, request("a", 0, 60), (), now, OPEN)
        .unwrap();
}

#[test]
fn global_caps_apply_across_bands() {
    let mut queues = FlowQueues::new(config(|c| {
        c.max_requests = 2;
        c.max_bytes = 1000;
    }));
    let now = Instant::now();
    queues
        .enqueue(1, request("a", 0, 1), (), now, OPEN)
        .unwrap();
    queues
        .enqueue(2, request("a", 3, 1), (), now, OPEN)
        .unwrap();
    let (rejection, ()) = queues
        .enqueue(3, request("a", 9, 1), (), now, OPEN)
        .unwrap_err();
    assert_eq!(rejection.limit, Some(CapacityLimit::TotalRequests(2)));
    queues.pop_next().unwrap();
    let (rejection, ()) = queues
        .enqueue(4, request("a", 9, 1000), (), now, OPEN)
        .unwrap_err();
    assert_eq!(rejection.limit, Some(CapacityLimit::TotalBytes(1000)));
    assert!(rejection.to_string().contains("flowControl.maxBytes"));
}

#[test]
fn zero_caps_mean_unlimited() {
    let mut queues = FlowQueues::new(config(|c| {
        c.default_band.max_requests = 0;
        c.default_band.max_bytes = 0;
    }));
    let now = Instant::now();
    for id in 0..10_000 {
        queues
            .enqueue(id, request("a", 0, u64::from(u32::MAX)), (), now, OPEN)
            .unwrap();
    }
    assert_eq!(queues.len(), 10_000);
}

#[test]
fn cancel_removes_the_entry_once_and_frees_its_flow() {
    let mut queues = FlowQueues::new(config(|c| c.default_band.fairness = Fairness::RoundRobin));
    let now = Instant::now();
    queues
        .enqueue(1, request("a", 0, 5), "a1", now, OPEN)
        .unwrap();
    queues
        .enqueue(2, request("b", 0, 7), "b1", now, OPEN)
        .unwrap();
    let gone = queues.cancel(1).unwrap();
    assert_eq!(
        (gone.payload, &*gone.fairness_id, gone.bytes),
        ("a1", "a", 5)
    );
    assert!(queues.cancel(1).is_none(), "a second cancel finds nothing");
    assert!(!queues.contains(1));
    assert_eq!(queues.flow_stats().len(), 1, "the empty flow is gone");
    assert_eq!((queues.len(), queues.bytes()), (1, 7));
    assert_eq!(drain_order(&mut queues), ["b1"]);
    assert_eq!(queues.next_expiry(true), None, "expiry index cleaned up");
}

#[test]
fn duplicate_ticket_is_refused_not_lost() {
    let mut queues = FlowQueues::new(config(|_| {}));
    let now = Instant::now();
    queues
        .enqueue(1, request("a", 0, 1), "first", now, OPEN)
        .unwrap();
    let (rejection, payload) = queues
        .enqueue(1, request("a", 0, 1), "second", now, OPEN)
        .unwrap_err();
    assert_eq!(
        (rejection.outcome, payload),
        (Outcome::RejectedOther, "second")
    );
    assert_eq!(drain_order(&mut queues), ["first"]);
}

#[test]
fn flow_stats_report_each_flow() {
    let mut queues = FlowQueues::new(config(|_| {}));
    let now = Instant::now();
    queues
        .enqueue(1, request("a", 0, 5), (), now, OPEN)
        .unwrap();
    queues
        .enqueue(2, request("a", 0, 6), (), now, OPEN)
        .unwrap();
    queues
        .enqueue(3, request("b", 2, 1), (), now, OPEN)
        .unwrap();
    let stats = queues.flow_stats();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (
            &*stats[0].fairness_id,
            stats[0].priority,
            stats[0].requests,
            stats[0].bytes
        ),
        ("b", 2, 1, 1)
    );
    assert_eq!(
        (
            &*stats[1].fairness_id,
            stats[1].priority,
            stats[1].requests,
            stats[1].bytes
        ),
        ("a", 0, 2, 11)
    );
}
