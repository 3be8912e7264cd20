//! Endpoint health in picks (review findings H6, M13, L7): stale and saturated endpoints are
//! filtered by default, ejected ones are skipped unless none would remain, and a fallback
//! that served takes over the load and the prefix.

use std::time::Duration;

use super::*;
use crate::datastore::health::{CONSECUTIVE_FAILURES, ejection_time};

fn fresh(mut endpoint: Endpoint, now: Instant) -> Endpoint {
    endpoint.scraped_at = Some(now);
    endpoint
}

fn queued(q: u32) -> EndpointMetrics {
    EndpointMetrics {
        waiting_queue: q,
        ..EndpointMetrics::default()
    }
}

#[test]
fn h6_the_default_profile_passes_over_an_endpoint_whose_metrics_are_stale() {
    let now = Instant::now();
    let later = now + Duration::from_secs(5);
    // The dead server's last scrape looked idle; the live one is busier but current.
    let mut dead = endpoint(1, queued(0));
    dead.scraped_at = Some(now);
    let live = fresh(endpoint(2, queued(3)), later);
    let snapshot = PoolSnapshot {
        endpoints: vec![dead, live],
        ..PoolSnapshot::default()
    };
    let view = RequestView {
        now: later,
        ..request(b"")
    };
    for _ in 0..20 {
        let pick = Scheduler::default().pick(&snapshot, &view).unwrap();
        assert_eq!(pick.endpoints, [snapshot.endpoints[1].address]);
    }
}

#[test]
fn h6_when_every_endpoint_is_stale_the_pool_still_serves() {
    let snapshot = pool(&[queued(0), queued(1)]);
    assert!(Scheduler::default().pick(&snapshot, &request(b"")).is_ok());
}

#[test]
fn m13_a_full_prefix_match_does_not_beat_a_saturated_queue_by_default() {
    let now = Instant::now();
    let busy = fresh(endpoint(1, queued(50)), now);
    let idle = fresh(endpoint(2, queued(0)), now);
    let snapshot = PoolSnapshot {
        endpoints: vec![busy, idle],
        ..PoolSnapshot::default()
    };
    let prompt = "a shared system prompt ".repeat(200);
    let view = RequestView {
        now,
        ..request(prompt.as_bytes())
    };
    let scheduler = Scheduler::default();
    // Warm the busy server's prefix table with this very prompt.
    let mut hashes = Vec::new();
    let prefix = PrefixParameters::default();
    let (block_chars, max_blocks) = prefix_geometry(&prefix, &snapshot);
    hash_prompt(
        "m",
        "",
        prompt.as_bytes(),
        block_chars,
        max_blocks,
        &mut hashes,
    );
    for hash in &hashes {
        snapshot.endpoints[0].prefix.insert(*hash);
    }
    let pick = scheduler.pick(&snapshot, &view).unwrap();
    assert_eq!(pick.endpoints, [snapshot.endpoints[1].address]);
}

#[test]
fn m13_the_charts_default_profile_is_the_built_in_one() {
    let template = include_str!("../../../../charts/inferencepool/templates/configmap.yaml");
    let start = template.find("default-plugins.yaml: |").unwrap();
    let text: String = template[start..]
        .lines()
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with("{{"))
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    let config = SchedulerConfig::from_yaml(&text).unwrap();
    let filters: Vec<&str> = config.filters.iter().map(|f| f.type_name()).collect();
    assert_eq!(
        filters,
        ["prefix-cache-affinity-filter", "utilization-detector"]
    );
    let scorers: Vec<(&str, f64)> = config
        .scorers
        .iter()
        .map(|(s, w)| (s.type_name(), *w))
        .collect();
    let built_in = SchedulerConfig::default();
    let expected: Vec<(&str, f64)> = built_in
        .scorers
        .iter()
        .map(|(s, w)| (s.type_name(), *w))
        .collect();
    assert_eq!(scorers, expected);
}

#[test]
fn h6_consecutive_failures_eject_an_endpoint_for_a_growing_time_and_success_ends_it() {
    let snapshot = pool(&[queued(0), queued(0), queued(0), queued(0)]);
    let bad = snapshot.endpoints[0].address;
    let now = Instant::now();
    for _ in 1..CONSECUTIVE_FAILURES {
        assert_eq!(snapshot.record_outcome(bad, true, now), None);
    }
    assert_eq!(
        snapshot.record_outcome(bad, true, now),
        Some(ejection_time(1))
    );
    // Ejected: never picked while it lasts.
    let view = RequestView {
        now,
        ..request(b"")
    };
    for _ in 0..40 {
        let pick = Scheduler::default().pick(&snapshot, &view).unwrap();
        assert_ne!(pick.endpoints[0], bad);
    }
    // Once it expires it is tried again; one more failure ejects it for twice as long.
    let after = now + ejection_time(1) + Duration::from_millis(1);
    assert!(!snapshot.endpoints[0].is_ejected(after));
    assert_eq!(
        snapshot.record_outcome(bad, true, after),
        Some(ejection_time(2))
    );
    assert!(ejection_time(2) > ejection_time(1));
    // A success ends the history: it takes a full streak again.
    let later = after + ejection_time(2) + Duration::from_millis(1);
    assert_eq!(snapshot.record_outcome(bad, false, later), None);
    assert_eq!(snapshot.record_outcome(bad, true, later), None);
}

#[test]
fn h6_ejection_never_empties_the_pool() {
    let snapshot = pool(&[queued(0), queued(0)]);
    let now = Instant::now();
    let (a, b) = (snapshot.endpoints[0].address, snapshot.endpoints[1].address);
    for _ in 0..CONSECUTIVE_FAILURES {
        snapshot.record_outcome(a, true, now);
        snapshot.record_outcome(b, true, now);
    }
    // At most half the pool is ejected at once...
    let ejected = snapshot
        .endpoints
        .iter()
        .filter(|e| e.is_ejected(now))
        .count();
    assert_eq!(ejected, 1);
    // ...and a pool whose every candidate is ejected still serves (panic threshold).
    let one = pool(&[queued(0)]);
    let only = one.endpoints[0].address;
    for _ in 0..CONSECUTIVE_FAILURES {
        one.record_outcome(only, true, now);
    }
    assert!(one.endpoints[0].is_ejected(now));
    let view = RequestView {
        now,
        ..request(b"")
    };
    assert_eq!(
        Scheduler::default().pick(&one, &view).unwrap().endpoints,
        [only]
    );
}

#[test]
fn l7_a_fallback_that_served_takes_the_reservation_and_the_prefix() {
    let snapshot = pool(&[queued(0), queued(5), queued(9)]);
    let scheduler = Scheduler::new(
        SchedulerConfig::from_yaml(
            "plugins: [{type: queue-scorer}, {type: prefix-cache-scorer}, \
             {type: max-score-picker, parameters: {maxNumOfEndpoints: 2}}]\n\
             schedulingProfiles: [{name: p, plugins: [{pluginRef: queue-scorer}, \
             {pluginRef: prefix-cache-scorer}, {pluginRef: max-score-picker}]}]\n",
        )
        .unwrap(),
    );
    let prompt = "x".repeat(4096);
    let mut pick = scheduler
        .pick(&snapshot, &request(prompt.as_bytes()))
        .unwrap();
    let (first, second) = (&snapshot.endpoints[0], &snapshot.endpoints[1]);
    assert_eq!(pick.endpoints, [first.address, second.address]);
    assert_eq!((first.load.in_flight(), second.load.in_flight()), (1, 0));
    assert!(second.prefix.is_empty());

    pick.served_by(second);
    assert_eq!((first.load.in_flight(), second.load.in_flight()), (0, 1));
    assert!(!second.prefix.is_empty());
    assert_eq!(pick.endpoints[0], second.address);
    // Reported twice: nothing moves again.
    pick.served_by(second);
    assert_eq!((first.load.in_flight(), second.load.in_flight()), (0, 1));
    // An endpoint that was not picked cannot take the load.
    pick.served_by(&snapshot.endpoints[2]);
    assert_eq!(snapshot.endpoints[2].load.in_flight(), 0);
    drop(pick);
    assert_eq!(second.load.in_flight(), 0);
}

#[test]
fn m12_the_prefix_scorers_lru_capacity_and_auto_tune_reach_the_table_sizing() {
    let config = SchedulerConfig::from_yaml(
        "plugins: [{type: prefix-cache-scorer, parameters: {lruCapacityPerServer: 5000, \
         autoTune: false}}]\n\
         schedulingProfiles: [{name: p, plugins: [{pluginRef: prefix-cache-scorer}]}]\n",
    )
    .unwrap();
    let sizing = config.prefix_sizing();
    assert_eq!(
        (sizing.capacity_per_server, sizing.auto_tune),
        (5000, false)
    );
}
