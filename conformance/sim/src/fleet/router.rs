//! The routing hook: what a router sees of each replica, and two reference routers.

use super::report::RequestResult;
use super::workload::Arrival;
use crate::engine::{Engine, Micros};

/// Load numbers of a replica as a router sees them: live, or as of the last snapshot when
/// the fleet models a scrape interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadSnapshot {
    /// `num_requests_waiting`.
    pub waiting: usize,
    /// `num_requests_running`.
    pub running: usize,
    /// `kv_cache_usage_perc`.
    pub kv_usage: f64,
}

impl LoadSnapshot {
    pub(crate) fn of(e: &Engine) -> Self {
        Self {
            waiting: e.num_waiting(),
            running: e.num_running(),
            kv_usage: e.kv_usage(),
        }
    }
}

/// Read-only view of one replica at an arrival.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaView<'a> {
    /// Position in the fleet (what [`Router::pick`] returns).
    pub index: usize,
    /// Replica name.
    pub name: &'a str,
    /// Load numbers (possibly stale, see [`super::FleetConfig::snapshot_interval_us`]).
    pub load: LoadSnapshot,
    engine: &'a Engine,
}

impl<'a> ReplicaView<'a> {
    pub(crate) fn new(index: usize, name: &'a str, load: LoadSnapshot, engine: &'a Engine) -> Self {
        Self {
            index,
            name,
            load,
            engine,
        }
    }

    /// Prompt tokens of `arrival` this replica would serve from its prefix cache now — an
    /// exact ("precise prefix") oracle, always live.
    pub fn prefix_hit_tokens(&self, arrival: &Arrival) -> usize {
        self.engine.prefix_hit_tokens(&arrival.block_hashes)
    }

    /// The replica's engine, for routers that want more than the summary.
    pub fn engine(&self) -> &'a Engine {
        self.engine
    }
}

/// What a router does with an arrival (or a request it held): a gateway-side flow
/// controller can queue work in front of the fleet and refuse some of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it to this replica now (out-of-range indices wrap around).
    To(usize),
    /// Keep it in the router's queue; [`Router::release`] decides later.
    Hold,
    /// Refuse it with this HTTP status (429, 503…).
    Refuse(u16),
}

/// Picks a replica for each arrival. Implemented by benchmarks (round robin, the EPP's
/// scorers…).
pub trait Router {
    /// Index of the replica (into `replicas`) that should serve `arrival`. Out-of-range
    /// answers wrap around.
    fn pick(&mut self, arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize;

    /// Called when a request finishes, for routers that track in-flight work.
    fn on_finish(&mut self, _result: &RequestResult) {}

    /// Admission for arrival `id` (its index in the report) at `now`: by default every
    /// arrival goes straight to [`Router::pick`]'s replica.
    fn admit(
        &mut self,
        _now: Micros,
        _id: u64,
        arrival: &Arrival,
        replicas: &[ReplicaView<'_>],
    ) -> Admit {
        Admit::To(self.pick(arrival, replicas))
    }

    /// After every event, the held requests to dispatch or refuse now, as `(id, decision)`
    /// (a [`Admit::Hold`] there changes nothing). Only routers that hold need this.
    fn release(
        &mut self,
        _now: Micros,
        _replicas: &[ReplicaView<'_>],
        _out: &mut Vec<(u64, Admit)>,
    ) {
    }

    /// The next instant the router wants [`Router::release`] called even if nothing else
    /// happens (a queue-wait deadline).
    fn next_wakeup(&self) -> Option<Micros> {
        None
    }
}

/// Replicas in turn, blind to load and cache.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl Router for RoundRobin {
    fn pick(&mut self, _arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        let i = self.next % replicas.len().max(1);
        self.next = self.next.wrapping_add(1);
        i
    }
}

/// A GIE-default-like scorer for comparisons: queue (weight 2), KV usage (2) and precise
/// prefix hit fraction (3), summed; ties broken by rotating start so bursts spread out.
#[derive(Debug, Clone, Default)]
pub struct PrefixLoadScorer {
    rotate: usize,
}

impl Router for PrefixLoadScorer {
    fn pick(&mut self, arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        let n = replicas.len().max(1);
        let (min_q, max_q) = replicas.iter().fold((usize::MAX, 0), |(lo, hi), r| {
            (lo.min(r.load.waiting), hi.max(r.load.waiting))
        });
        let prompt = f64::from(arrival.prompt_tokens.max(1));
        let mut best = (f64::NEG_INFINITY, 0);
        self.rotate = self.rotate.wrapping_add(1);
        for k in 0..replicas.len() {
            let r = &replicas[(k + self.rotate) % n];
            let queue = if max_q == min_q {
                1.0
            } else {
                (max_q - r.load.waiting) as f64 / (max_q - min_q) as f64
            };
            let prefix = r.prefix_hit_tokens(arrival) as f64 / prompt;
            let score = 2.0 * queue + 2.0 * (1.0 - r.load.kv_usage) + 3.0 * prefix;
            if score > best.0 {
                best = (score, r.index);
            }
        }
        best.1
    }
}
