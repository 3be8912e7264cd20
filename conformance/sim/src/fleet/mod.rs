//! The virtual-time driver: a fleet of replicas on a discrete-event clock.
//!
//! Time jumps from one event to the next — an arrival or the end of some replica's engine
//! step — so a run costs CPU in proportion to engine steps and arrivals, not to simulated
//! seconds. Everything is deterministic: the same workload, configuration and router give
//! the same [`FleetReport`].
//!
//! Each arrival is offered to a [`Router`] with a read-only [`ReplicaView`] of every
//! replica (queue, running, KV usage and an exact prefix-hit oracle); the chosen replica's
//! engine queues it and, if idle, starts a step. Load numbers can be made stale with
//! [`FleetConfig::snapshot_interval_us`] to model the EPP's scrape interval.

mod report;
mod router;
mod workload;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use report::{
    FleetReport, LoadSample, ReplicaReport, RequestResult, RequestStatus, percentile,
};
pub use router::{LoadSnapshot, PrefixLoadScorer, ReplicaView, RoundRobin, Router};
pub use workload::{Arrival, PoissonTimes, RateSchedule, SharedPrefix, synthetic_tokens};

use crate::engine::{Engine, EngineConfig, EngineEvent, EngineRequest, Micros};
use crate::kv::BlockHasher;

/// Shape of a fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Number of replicas.
    pub replicas: usize,
    /// Engine configuration shared by every replica.
    pub engine: EngineConfig,
    /// LoRA adapters every replica can serve.
    pub adapters: Vec<String>,
    /// Root of the block-hash chains (same on every replica, as for one model).
    pub hash_seed: u64,
    /// How often routers' load numbers refresh (µs); 0 means always live.
    pub snapshot_interval_us: Micros,
    /// How often load samples are recorded for the report (µs); 0 disables them.
    pub sample_interval_us: Micros,
}

impl FleetConfig {
    /// `replicas` replicas of `engine`, live load views, one sample per second.
    pub fn new(replicas: usize, engine: EngineConfig) -> Self {
        Self {
            replicas,
            engine,
            adapters: Vec::new(),
            hash_seed: 0,
            snapshot_interval_us: 0,
            sample_interval_us: 1_000_000,
        }
    }
}

struct Replica {
    name: String,
    engine: Engine,
    busy: bool,
    snapshot: LoadSnapshot,
    samples: Vec<LoadSample>,
    max_running: usize,
}

/// N simulated replicas driven by virtual time.
pub struct Fleet {
    cfg: FleetConfig,
    replicas: Vec<Replica>,
}

impl Fleet {
    /// An idle fleet.
    pub fn new(cfg: FleetConfig) -> Self {
        let replicas = (0..cfg.replicas.max(1))
            .map(|i| Replica {
                name: format!("sim-{i}"),
                engine: Engine::new(cfg.engine.clone(), cfg.adapters.iter().cloned()),
                busy: false,
                snapshot: LoadSnapshot::default(),
                samples: Vec::new(),
                max_running: 0,
            })
            .collect();
        Self { cfg, replicas }
    }

    /// The hasher arrivals must use so replicas recognise their prefixes.
    pub fn hasher(&self) -> BlockHasher {
        BlockHasher::new(self.cfg.hash_seed, self.cfg.engine.block_size)
    }

    /// Engine of replica `i` (for inspection after a run).
    pub fn engine(&self, i: usize) -> Option<&Engine> {
        self.replicas.get(i).map(|r| &r.engine)
    }

    /// Plays `arrivals` (sorted by time) through `router` until every request is done or
    /// virtual time passes `until` µs, whichever is first.
    pub fn run<R, I>(&mut self, arrivals: I, router: &mut R, until: Micros) -> FleetReport
    where
        R: Router + ?Sized,
        I: IntoIterator<Item = Arrival>,
    {
        let mut arrivals = arrivals.into_iter().peekable();
        let mut step_ends: BinaryHeap<Reverse<(Micros, usize)>> = BinaryHeap::new();
        let mut results: Vec<RequestResult> = Vec::new();
        let mut events = Vec::new();
        let snap_every = self.cfg.snapshot_interval_us;
        let sample_every = self.cfg.sample_interval_us;
        let mut next_snap = 0;
        let mut next_sample = 0;
        let mut now = 0;

        loop {
            let next_step = step_ends.peek().map(|Reverse((t, _))| *t);
            let next_arrival = arrivals.peek().map(|a| a.at);
            // Step ends go first on ties: capacity freed at t is visible to arrivals at t.
            let (t, is_step) = match (next_step, next_arrival) {
                (None, None) => break,
                (Some(s), Some(a)) if s <= a => (s, true),
                (Some(s), None) => (s, true),
                (_, Some(a)) => (a, false),
            };
            if t > until {
                break;
            }
            now = t;
            // Periodic bookkeeping up to now (only while there is work, so it ends).
            while sample_every > 0 && next_sample <= now {
                for r in &mut self.replicas {
                    let l = LoadSnapshot::of(&r.engine);
                    r.samples.push(LoadSample {
                        at: next_sample,
                        waiting: l.waiting,
                        running: l.running,
                        kv_usage: l.kv_usage,
                    });
                }
                next_sample += sample_every;
            }
            if snap_every > 0 && next_snap <= now {
                for r in &mut self.replicas {
                    r.snapshot = LoadSnapshot::of(&r.engine);
                }
                next_snap = (now / snap_every + 1) * snap_every;
            }

            if is_step {
                let Some(Reverse((_, i))) = step_ends.pop() else {
                    break;
                };
                let replica = &mut self.replicas[i];
                replica.busy = false;
                replica.engine.take_events(&mut events);
                for ev in events.drain(..) {
                    if let EngineEvent::Finished(o) = ev
                        && let Some(res) = results.get_mut(o.tag as usize)
                    {
                        res.status = RequestStatus::Completed;
                        res.output_tokens = o.output_tokens;
                        res.cached_tokens = o.cached_tokens;
                        res.preemptions = o.preemptions;
                        res.ttft_us = o.ttft_us();
                        res.e2e_us = Some(o.e2e_us());
                        res.queue_us = Some(o.queue_us());
                        res.itl_mean_us = o.itl_mean_us();
                        res.itl_max_us = o.itl_max_us;
                        router.on_finish(res);
                    }
                }
                self.kick(i, now, &mut step_ends);
                continue;
            }

            let Some(arrival) = arrivals.next() else {
                break;
            };
            let live = snap_every == 0;
            let views: Vec<ReplicaView<'_>> = self
                .replicas
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let load = if live {
                        LoadSnapshot::of(&r.engine)
                    } else {
                        r.snapshot
                    };
                    ReplicaView::new(i, &r.name, load, &r.engine)
                })
                .collect();
            let i = router.pick(&arrival, &views) % self.replicas.len();
            drop(views);
            let index = results.len() as u64;
            let mut res =
                RequestResult::pending(index, i, arrival.group, arrival.at, arrival.prompt_tokens);
            let req = EngineRequest {
                prompt_tokens: arrival.prompt_tokens,
                block_hashes: arrival.block_hashes,
                output_tokens: arrival.output_tokens,
                max_tokens_param: Some(arrival.output_tokens),
                lora: arrival.lora,
                stream: false,
                tag: index,
            };
            if let Err(e) = self.replicas[i].engine.submit(req, now) {
                res.status = RequestStatus::Rejected(e.status());
            }
            results.push(res);
            if !self.replicas[i].busy {
                self.kick(i, now, &mut step_ends);
            }
        }

        FleetReport {
            results,
            replicas: self
                .replicas
                .iter_mut()
                .map(|r| {
                    let m = r.engine.metrics();
                    ReplicaReport {
                        name: r.name.clone(),
                        samples: std::mem::take(&mut r.samples),
                        preemptions: m.preemptions,
                        prefix_queries: m.prefix_queries,
                        prefix_hits: m.prefix_hits,
                        generation_tokens: m.generation_tokens,
                        steps: r.engine.steps(),
                        max_running: r.max_running,
                    }
                })
                .collect(),
            sim_end_us: now,
        }
    }

    /// Starts a step on replica `i` if it has work.
    fn kick(
        &mut self,
        i: usize,
        now: Micros,
        step_ends: &mut BinaryHeap<Reverse<(Micros, usize)>>,
    ) {
        let r = &mut self.replicas[i];
        if let Some(end) = r.engine.step(now) {
            r.busy = true;
            r.max_running = r.max_running.max(r.engine.num_running());
            step_ends.push(Reverse((end, i)));
        }
    }
}
