//! The overload scenario in the simulator's virtual-time fleet (issue #6): 20%
//! priority 1, 60% priority 0, 20% priority -1 at 1.5× the fleet's capacity, with the EPP's
//! flow-control queues ([`FlowQueues`]) in front of the fleet vs. without them.
//!
//! The flow-control router mirrors the EPP's wiring with the concurrency detector: the pool
//! is saturated while every replica holds `SLOTS` requests this router sent and that have not
//! finished; arrivals are queued by priority (sheddable ones refused while saturated), queued
//! sheddable work is refused when saturation sets in, queue-wait TTLs expire as 429, and a
//! free slot takes the head of the highest band. Both routers pick the replica with the
//! fewest requests in flight (the EPP's full scorer chain is not used here).
//!
//! Virtual time: deterministic, milliseconds of CPU for minutes of simulated load. The
//! figures printed with `--nocapture` are recorded in docs/performance.md.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_epp::flow::{FlowControlConfig, FlowQueues, FlowRequest};
use switchyard_sim::engine::{Micros, Profile};
use switchyard_sim::fleet::{
    Admit, Arrival, Fleet, FleetConfig, FleetReport, PoissonTimes, RateSchedule, ReplicaView,
    RequestResult, RequestStatus, Router, percentile, synthetic_tokens,
};

const REPLICAS: usize = 4;
/// Sequences per replica (`max_num_seqs`) and the detector's per-endpoint limit.
const SLOTS: usize = 8;
const PROMPT_TOKENS: usize = 200;
const OUTPUT_TOKENS: u32 = 50;
const SECONDS: u64 = 120;
const TTL: Duration = Duration::from_secs(5);

fn priority_of(i: u64) -> i64 {
    match i % 10 {
        0 | 5 => 1,
        3 | 8 => -1,
        _ => 0,
    }
}

fn fleet() -> Fleet {
    let mut engine = Profile::Small.config();
    engine.max_num_seqs = SLOTS;
    Fleet::new(FleetConfig::new(REPLICAS, engine))
}

/// Poisson arrivals at `qps` for [`SECONDS`], with the mix's priorities.
fn arrivals(fleet: &Fleet, qps: f64) -> Vec<Arrival> {
    let hasher = fleet.hasher();
    PoissonTimes::new(RateSchedule::constant(qps, SECONDS * 1_000_000), 7)
        .enumerate()
        .map(|(i, at)| {
            let i = i as u64;
            let mut a = Arrival::from_tokens(
                at,
                &synthetic_tokens(i, PROMPT_TOKENS),
                OUTPUT_TOKENS,
                &hasher,
            );
            a.priority = priority_of(i) as i32;
            a.group = i;
            a
        })
        .collect()
}

/// In-flight counts per replica; picks the least loaded.
#[derive(Default)]
struct InFlight {
    counts: Vec<usize>,
}

impl InFlight {
    fn pick(&mut self, replicas: usize) -> usize {
        self.counts.resize(replicas, 0);
        let (i, _) = self
            .counts
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| **n)
            .unwrap();
        self.counts[i] += 1;
        i
    }

    fn finish(&mut self, replica: usize) {
        if let Some(n) = self.counts.get_mut(replica) {
            *n = n.saturating_sub(1);
        }
    }

    fn saturated(&self, replicas: usize) -> bool {
        self.counts.len() == replicas && self.counts.iter().all(|n| *n >= SLOTS)
    }
}

/// No flow control: every arrival goes to the least-loaded replica at once.
#[derive(Default)]
struct Direct {
    in_flight: InFlight,
}

impl Router for Direct {
    fn pick(&mut self, _a: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        self.in_flight.pick(replicas.len())
    }

    fn on_finish(&mut self, result: &RequestResult) {
        self.in_flight.finish(result.replica);
    }
}

/// The EPP's flow-control queues in front of the fleet.
struct Flow {
    queues: FlowQueues<()>,
    in_flight: InFlight,
    epoch: Instant,
    expired: Vec<(
        switchyard_epp::flow::queues::Queued<()>,
        switchyard_epp::flow::Outcome,
    )>,
    shed: Vec<switchyard_epp::flow::queues::Queued<()>>,
}

impl Flow {
    fn new() -> Self {
        let config = FlowControlConfig {
            enabled: true,
            default_request_ttl: Some(TTL),
            ..FlowControlConfig::default()
        };
        Self {
            queues: FlowQueues::new(Arc::new(config)),
            in_flight: InFlight::default(),
            epoch: Instant::now(),
            expired: Vec::new(),
            shed: Vec::new(),
        }
    }

    fn instant(&self, now: Micros) -> Instant {
        self.epoch + Duration::from_micros(now)
    }
}

impl Router for Flow {
    fn pick(&mut self, _a: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        self.in_flight.pick(replicas.len())
    }

    fn on_finish(&mut self, result: &RequestResult) {
        self.in_flight.finish(result.replica);
    }

    fn admit(&mut self, now: Micros, id: u64, a: &Arrival, replicas: &[ReplicaView<'_>]) -> Admit {
        let pool = switchyard_epp::flow::PoolState {
            saturated: self.in_flight.saturated(replicas.len()),
            has_endpoints: true,
        };
        let request = FlowRequest {
            fairness_id: "default-flow".into(),
            priority: i64::from(a.priority),
            byte_size: u64::from(a.prompt_tokens) * 4,
            ttl: None,
        };
        match self
            .queues
            .enqueue(id, request, (), self.instant(now), pool)
        {
            Ok(()) => Admit::Hold,
            Err((rejection, ())) => Admit::Refuse(rejection.status()),
        }
    }

    fn release(&mut self, now: Micros, replicas: &[ReplicaView<'_>], out: &mut Vec<(u64, Admit)>) {
        let at = self.instant(now);
        self.queues.expire(at, true, &mut self.expired);
        for (queued, _) in self.expired.drain(..) {
            out.push((queued.id, Admit::Refuse(429)));
        }
        if self.in_flight.saturated(replicas.len()) {
            self.queues.shed_sheddable(&mut self.shed);
            for queued in self.shed.drain(..) {
                out.push((queued.id, Admit::Refuse(429)));
            }
            return;
        }
        while !self.in_flight.saturated(replicas.len()) {
            let Some(queued) = self.queues.pop_next() else {
                break;
            };
            out.push((queued.id, Admit::To(self.in_flight.pick(replicas.len()))));
        }
    }

    fn next_wakeup(&self) -> Option<Micros> {
        let at = self.queues.next_expiry(true)?;
        Some(at.saturating_duration_since(self.epoch).as_micros() as Micros)
    }
}

/// Per priority: (sent, completed TTFTs in ms, refused).
fn by_priority(
    report: &FleetReport,
    arrivals: &[Arrival],
) -> BTreeMap<i32, (usize, Vec<f64>, usize)> {
    let mut out: BTreeMap<i32, (usize, Vec<f64>, usize)> = BTreeMap::new();
    for r in &report.results {
        let entry = out.entry(arrivals[r.index as usize].priority).or_default();
        entry.0 += 1;
        match r.status {
            RequestStatus::Completed => entry.1.push(r.ttft_us.unwrap() as f64 / 1000.0),
            RequestStatus::Rejected(_) => entry.2 += 1,
            RequestStatus::Unfinished => {}
        }
    }
    out
}

fn table(name: &str, report: &FleetReport, arrivals: &[Arrival]) -> (String, BTreeMap<i32, f64>) {
    let mut text = format!("{name}:\n");
    let mut p99s = BTreeMap::new();
    for (priority, (sent, mut ttfts, refused)) in by_priority(report, arrivals) {
        let p50 = percentile(&mut ttfts, 50.0).unwrap_or(f64::NAN);
        let p99 = percentile(&mut ttfts, 99.0).unwrap_or(f64::NAN);
        p99s.insert(priority, p99);
        text.push_str(&format!(
            "  priority {priority:>2}: sent {sent:>5}, completed {:>5}, refused {refused:>5}, TTFT p50 {p50:>8.1} ms, p99 {p99:>8.1} ms\n",
            ttfts.len()
        ));
    }
    (text, p99s)
}

#[test]
fn priority_ttft_and_shedding_at_one_and_a_half_times_capacity_with_and_without_flow_control() {
    // Capacity: what the fleet completes per second when flow control keeps it exactly full
    // (offered 3× a rough estimate, so the queue never runs dry).
    let mut f = fleet();
    let flood = arrivals(&f, 150.0);
    let report = f.run(flood, &mut Flow::new(), SECONDS * 1_000_000);
    let capacity = report.completed().count() as f64 / SECONDS as f64;
    assert!(capacity > 10.0, "capacity {capacity:.1}/s");

    let mut f = fleet();
    let light = arrivals(&f, 0.25 * capacity);
    let unloaded = f.run(light.clone(), &mut Direct::default(), u64::MAX);
    let (unloaded_text, unloaded_p99) =
        table("unloaded (0.25×), no flow control", &unloaded, &light);

    let mut f = fleet();
    let heavy = arrivals(&f, 1.5 * capacity);
    let direct = f.run(heavy.clone(), &mut Direct::default(), u64::MAX);
    let (direct_text, _) = table("1.5×, no flow control", &direct, &heavy);

    let mut f = fleet();
    let flow = f.run(heavy.clone(), &mut Flow::new(), u64::MAX);
    let (flow_text, flow_p99) = table("1.5×, flow control", &flow, &heavy);

    let ratio = flow_p99[&1] / unloaded_p99[&1];
    println!(
        "capacity {capacity:.1} req/s ({REPLICAS} replicas × {SLOTS} seqs, {PROMPT_TOKENS} prompt + {OUTPUT_TOKENS} output tokens)\n{unloaded_text}{direct_text}{flow_text}priority-1 TTFT p99 at 1.5× / unloaded: {ratio:.2} (goal ≤ 1.2)"
    );

    // Every arrival ends completed or refused in both runs at 1.5× (nothing held forever).
    for report in [&direct, &flow] {
        assert_eq!(report.results.len(), heavy.len());
        assert!(
            report
                .results
                .iter()
                .all(|r| r.status != RequestStatus::Unfinished)
        );
    }
    let flow_counts = by_priority(&flow, &heavy);
    // Priority 1 is never refused; sheddable work is refused more than priority 0.
    assert_eq!(flow_counts[&1].2, 0);
    let rate = |p: i32| flow_counts[&p].2 as f64 / flow_counts[&p].0 as f64;
    assert!(
        rate(-1) > rate(0),
        "shed -1 {:.2} vs 0 {:.2}",
        rate(-1),
        rate(0)
    );
    // Without flow control the engine queues grow for two minutes and priority 1 waits with
    // everyone; with it, priority 1 stays near its unloaded TTFT.
    let direct_p1 = {
        let (_, mut t, _) = by_priority(&direct, &heavy).remove(&1).unwrap();
        percentile(&mut t, 99.0).unwrap()
    };
    assert!(flow_p99[&1] < direct_p1 / 10.0, "{flow_text}{direct_text}");
}
