//! The virtual-time fleet's routing hook: views, stale snapshots and per-request results.
#![allow(clippy::unwrap_used)]

use switchyard_sim::engine::Profile;
use switchyard_sim::fleet::{
    Arrival, Fleet, FleetConfig, PrefixLoadScorer, RateSchedule, ReplicaView, RoundRobin, Router,
    SharedPrefix, synthetic_tokens,
};

/// Sends everything to replica 0 and records what it saw of replica 0's queue.
#[derive(Default)]
struct Recorder {
    seen_waiting: Vec<usize>,
    finished: usize,
}

impl Router for Recorder {
    fn pick(&mut self, _a: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        assert_eq!(replicas.len(), 2);
        assert_eq!(replicas[1].name, "sim-1");
        self.seen_waiting.push(replicas[0].load.waiting);
        0
    }

    fn on_finish(&mut self, r: &switchyard_sim::fleet::RequestResult) {
        assert_eq!(r.replica, 0);
        self.finished += 1;
    }
}

fn burst(fleet: &Fleet) -> Vec<Arrival> {
    // 40 arrivals 10 ms apart at a replica with 2 seats: the queue builds up.
    (0..40u64)
        .map(|i| Arrival::from_tokens(i * 10_000, &synthetic_tokens(i, 100), 20, &fleet.hasher()))
        .collect()
}

fn engine_with_two_seats() -> FleetConfig {
    let mut e = Profile::Small.config();
    e.max_num_seqs = 2;
    FleetConfig::new(2, e)
}

#[test]
fn live_views_track_the_queue_and_stale_views_lag() {
    let mut live = Fleet::new(engine_with_two_seats());
    let mut rec = Recorder::default();
    let a = burst(&live);
    let report = live.run(a, &mut rec, u64::MAX);
    assert_eq!(rec.finished, 40);
    assert_eq!(report.completed().count(), 40);
    assert!(rec.seen_waiting.windows(2).all(|w| w[1] + 2 >= w[0]));
    assert!(
        *rec.seen_waiting.last().unwrap() > 20,
        "{:?}",
        rec.seen_waiting
    );

    let mut cfg = engine_with_two_seats();
    cfg.snapshot_interval_us = 1_000_000; // one scrape per simulated second
    let mut stale = Fleet::new(cfg);
    let mut rec = Recorder::default();
    let a = burst(&stale);
    stale.run(a, &mut rec, u64::MAX);
    assert!(
        rec.seen_waiting.iter().all(|&w| w == 0),
        "the only scrape was at t = 0"
    );
}

#[test]
fn cache_aware_routing_beats_round_robin_on_shared_prefixes() {
    let mut cfg = Profile::Small.config();
    cfg.num_gpu_blocks = 800; // 12.8k tokens per replica: the 34k-token prompt set fits only the fleet
    let workload = SharedPrefix {
        groups: 12,
        prompts_per_group: 4,
        prefix_tokens: 2_000,
        question_tokens: 200,
        output_tokens: 50,
    };
    let run = |router: &mut dyn Router| {
        let mut fleet = Fleet::new(FleetConfig::new(4, cfg.clone()));
        let arrivals =
            workload.arrivals(&fleet.hasher(), RateSchedule::constant(2.0, 120_000_000), 5);
        fleet.run(arrivals, router, u64::MAX)
    };
    let rr = run(&mut RoundRobin::default());
    let scored = run(&mut PrefixLoadScorer::default());
    let (rr_ttft, sc_ttft) = (
        rr.ttft_percentile_s(50.0).unwrap(),
        scored.ttft_percentile_s(50.0).unwrap(),
    );
    eprintln!(
        "RR hit {:.2} TTFT p50 {rr_ttft:.3} s; scorer hit {:.2} TTFT p50 {sc_ttft:.3} s",
        rr.hit_rate(),
        scored.hit_rate()
    );
    assert!(scored.hit_rate() > rr.hit_rate() + 0.2);
    assert!(sc_ttft < rr_ttft);
    assert_eq!(rr.results.len(), scored.results.len(), "same arrivals");
    assert!(
        scored
            .results
            .iter()
            .all(|r| r.cached_tokens <= r.prompt_tokens)
    );
}
