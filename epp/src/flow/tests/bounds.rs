//! Bounds on what callers' fairness ids can make flow control hold: flows per band, the turn
//! index, and the per-flow series on `/metrics`.

use std::time::Instant;

use super::*;
use crate::flow::metrics::{MAX_FLOW_SERIES, OTHER_FLOWS_LABEL};
use crate::flow::queues::MAX_FLOWS_PER_BAND;

#[test]
fn h3_flows_per_band_are_capped_and_new_ids_join_the_default_flow() {
    let mut queues = FlowQueues::new(config(|c| {
        c.default_band.fairness = Fairness::RoundRobin;
        c.default_band.max_requests = 0;
    }));
    let now = Instant::now();
    let extra = 10;
    for i in 0..MAX_FLOWS_PER_BAND + extra {
        queues
            .enqueue(
                i as u64,
                request(&format!("tenant-{i}"), 0, 1),
                i,
                now,
                OPEN,
            )
            .unwrap();
    }
    let stats = queues.flow_stats();
    assert_eq!(
        stats.len(),
        MAX_FLOWS_PER_BAND + 1,
        "the cap plus the default flow"
    );
    let default = stats
        .iter()
        .find(|s| &*s.fairness_id == "default-flow")
        .unwrap();
    assert_eq!(default.requests, extra as u64);
    // Every request still comes back exactly once.
    let mut seen: Vec<usize> =
        std::iter::from_fn(|| queues.pop_next().map(|q| q.payload)).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..MAX_FLOWS_PER_BAND + extra).collect::<Vec<_>>());
}

#[test]
fn h3_round_robin_turns_survive_flows_leaving_from_the_middle() {
    let mut queues = FlowQueues::new(config(|c| c.default_band.fairness = Fairness::RoundRobin));
    let now = Instant::now();
    for (id, flow) in ["a", "b", "c", "d"].into_iter().enumerate() {
        queues
            .enqueue(id as u64, request(flow, 0, 1), flow, now, OPEN)
            .unwrap();
    }
    queues
        .enqueue(10, request("a", 0, 1), "a2", now, OPEN)
        .unwrap();
    // `b` and `c` leave (client gone, TTL) while queued: the turn order of the rest holds.
    assert_eq!(queues.cancel(1).unwrap().payload, "b");
    assert_eq!(queues.pop_next().unwrap().payload, "a");
    assert_eq!(queues.cancel(2).unwrap().payload, "c");
    // `b` comes back: a fresh flow, at the back.
    queues
        .enqueue(11, request("b", 0, 1), "b2", now, OPEN)
        .unwrap();
    let order: Vec<_> = std::iter::from_fn(|| queues.pop_next().map(|q| q.payload)).collect();
    assert_eq!(order, ["d", "a2", "b2"]);
}

#[test]
fn h3_flows_leave_by_their_turn_index_in_any_order() {
    // The review's attack removed many single-request flows one by one while every removal
    // scanned and compared the whole turn order. Turns are now keyed by number, so each
    // removal touches only its own entry; the order of the others must survive any
    // sequence of departures.
    let mut queues = FlowQueues::new(config(|c| {
        c.default_band.fairness = Fairness::RoundRobin;
        c.default_band.max_requests = 0;
    }));
    let now = Instant::now();
    let prefix = "p".repeat(48);
    let flows = 200u64;
    for i in 0..flows {
        queues
            .enqueue(i, request(&format!("{prefix}{i:04}"), 0, 1), i, now, OPEN)
            .unwrap();
    }
    // Every third flow leaves (cancelled), from the back to the front.
    for i in (0..flows).rev().filter(|i| i % 3 == 0) {
        assert_eq!(queues.cancel(i).unwrap().payload, i);
    }
    let order: Vec<u64> = std::iter::from_fn(|| queues.pop_next().map(|q| q.payload)).collect();
    let expected: Vec<u64> = (0..flows).filter(|i| i % 3 != 0).collect();
    assert_eq!(order, expected, "the survivors keep their turns");
    assert!(queues.is_empty() && queues.flow_stats().is_empty());
}

#[test]
fn h3_per_flow_gauges_carry_a_bounded_number_of_fairness_ids() {
    let metrics = FlowMetrics::default();
    let flows: Vec<queues::FlowStat> = (0..1000u64)
        .map(|i| queues::FlowStat {
            fairness_id: format!("tenant-{i}").into(),
            priority: i64::from(i % 2 == 0),
            requests: i + 1,
            bytes: 10,
        })
        .collect();
    metrics.publish_flows(flows);
    let published = metrics.flows.load();
    assert_eq!(
        published.len(),
        MAX_FLOW_SERIES + 2,
        "64 flows and `other` per priority"
    );
    // The fullest flows keep their ids.
    assert!(published.iter().any(|f| &*f.fairness_id == "tenant-999"));
    let others: Vec<_> = published
        .iter()
        .filter(|f| &*f.fairness_id == OTHER_FLOWS_LABEL)
        .collect();
    assert_eq!(others.len(), 2);
    let total: u64 = published.iter().map(|f| f.requests).sum();
    assert_eq!(total, (1..=1000).sum::<u64>(), "nothing lost in the sums");
}
