//! Bounds on what callers' fairness ids can make flow control hold: flows per band, the turn
//! index, and the per-flow series on `/metrics`.

use std::time::{Duration, Instant};

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
fn h3_removing_flows_with_long_shared_prefix_ids_stays_cheap() {
    // The attack of the review: many queued single-request flows whose ids share a long
    // prefix, then removed one by one. With the turn order scanned and compared on every
    // removal this took O(flows² × id length); indexed, it is O(flows × log flows).
    let mut queues = FlowQueues::new(config(|c| {
        c.default_band.fairness = Fairness::RoundRobin;
        c.default_band.max_requests = 0;
    }));
    let now = Instant::now();
    let prefix = "p".repeat(64 * 1024);
    for i in 0..MAX_FLOWS_PER_BAND {
        queues
            .enqueue(
                i as u64,
                request(&format!("{prefix}{i:05}"), 0, 1),
                (),
                now,
                OPEN,
            )
            .unwrap();
    }
    let started = std::time::Instant::now();
    for i in (0..MAX_FLOWS_PER_BAND).rev() {
        assert!(queues.cancel(i as u64).is_some());
    }
    assert!(queues.is_empty());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "removing the flows took {took:?}"
    );
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
