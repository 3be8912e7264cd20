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
use std::collections::{BinaryHeap, HashMap};

pub use report::{
    FleetReport, LoadSample, ReplicaReport, RequestResult, RequestStatus, percentile,
};
pub use router::{Admit, LoadSnapshot, PrefixLoadScorer, ReplicaView, RoundRobin, Router};
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
    /// virtual time passes `until` µs, whichever is first. Requests the router holds
    /// ([`Admit::Hold`]) and never releases end as [`RequestStatus::Unfinished`].
    pub fn run<R, I>(&mut self, arrivals: I, router: &mut R, until: Micros) -> FleetReport
    where
        R: Router + ?Sized,
        I: IntoIterator<Item = Arrival>,
    {
        let mut arrivals = arrivals.into_iter().peekable();
        let mut step_ends: BinaryHeap<Reverse<(Micros, usize)>> = BinaryHeap::new();
        let mut results: Vec<RequestResult> = Vec::new();
        let mut held: HashMap<u64, Arrival> = HashMap::new();
        let mut released = Vec::new();
        let mut events = Vec::new();
        let mut next_snap = 0;
        let mut next_sample = 0;
        let mut now = 0;

        loop {
            let next_step = step_ends.peek().map(|Reverse((t, _))| *t);
            let next_arrival = arrivals.peek().map(|a| a.at);
            // A wakeup at or before now was served by the release pass of the last event.
            let next_wakeup = router
                .next_wakeup()
                .filter(|w| *w > now && !held.is_empty());
            // Step ends go first on ties: capacity freed at t is visible to arrivals at t.
            let Some(t) = [next_step, next_wakeup, next_arrival]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            if t > until {
                break;
            }
            now = t;
            self.bookkeeping(now, &mut next_sample, &mut next_snap);

            if next_step == Some(t) {
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
                        let held_us = res.held_us;
                        res.status = RequestStatus::Completed;
                        res.output_tokens = o.output_tokens;
                        res.cached_tokens = o.cached_tokens;
                        res.preemptions = o.preemptions;
                        res.ttft_us = o.ttft_us().map(|t| t + held_us);
                        res.e2e_us = Some(o.e2e_us() + held_us);
                        res.queue_us = Some(o.queue_us() + held_us);
                        res.itl_mean_us = o.itl_mean_us();
                        res.itl_max_us = o.itl_max_us;
                        router.on_finish(res);
                    }
                }
                self.kick(i, now, &mut step_ends);
            } else if next_arrival == Some(t) {
                let Some(arrival) = arrivals.next() else {
                    break;
                };
                let index = results.len() as u64;
                let decision = router.admit(now, index, &arrival, &self.views());
                results.push(RequestResult::pending(
                    index,
                    0,
                    arrival.group,
                    arrival.at,
                    arrival.prompt_tokens,
                ));
                match decision {
                    Admit::Hold => {
                        held.insert(index, arrival);
                    }
                    decision => {
                        self.settle(decision, index, arrival, now, &mut results, &mut step_ends)
                    }
                }
            }
            // A wakeup needs nothing but the release pass.
            if !held.is_empty() {
                router.release(now, &self.views(), &mut released);
                for (id, decision) in released.drain(..) {
                    if decision == Admit::Hold {
                        continue;
                    }
                    if let Some(arrival) = held.remove(&id) {
                        self.settle(decision, id, arrival, now, &mut results, &mut step_ends);
                    }
                }
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
                        lora_loads: m.lora_loads,
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

    /// Load samples and router snapshots due by `now`.
    fn bookkeeping(&mut self, now: Micros, next_sample: &mut Micros, next_snap: &mut Micros) {
        let sample_every = self.cfg.sample_interval_us;
        let snap_every = self.cfg.snapshot_interval_us;
        while sample_every > 0 && *next_sample <= now {
            for r in &mut self.replicas {
                let l = LoadSnapshot::of(&r.engine);
                r.samples.push(LoadSample {
                    at: *next_sample,
                    waiting: l.waiting,
                    running: l.running,
                    kv_usage: l.kv_usage,
                });
            }
            *next_sample += sample_every;
        }
        if snap_every > 0 && *next_snap <= now {
            for r in &mut self.replicas {
                r.snapshot = LoadSnapshot::of(&r.engine);
            }
            *next_snap = (now / snap_every + 1) * snap_every;
        }
    }

    /// What the router sees of every replica now.
    fn views(&self) -> Vec<ReplicaView<'_>> {
        let live = self.cfg.snapshot_interval_us == 0;
        self.replicas
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
            .collect()
    }

    /// Carries out a dispatch or refusal of arrival `index` (whose pending result is
    /// `results[index]`) at `now`; the time since it arrived counts as held.
    fn settle(
        &mut self,
        decision: Admit,
        index: u64,
        arrival: Arrival,
        now: Micros,
        results: &mut [RequestResult],
        step_ends: &mut BinaryHeap<Reverse<(Micros, usize)>>,
    ) {
        let Some(res) = results.get_mut(index as usize) else {
            return;
        };
        res.held_us = now.saturating_sub(arrival.at);
        let i = match decision {
            Admit::To(i) => i % self.replicas.len(),
            Admit::Refuse(status) => {
                res.status = RequestStatus::Rejected(status);
                return;
            }
            Admit::Hold => return,
        };
        res.replica = i;
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
        if !self.replicas[i].busy {
            self.kick(i, now, step_ends);
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
