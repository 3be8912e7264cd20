//! Properties of the core against a simple model: no priority inversion,
//! FCFS within a flow, TTLs exact, shedding exact, counters exact, every
//! request leaves exactly once, and round-robin starves no flow.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::flow::queues::Queued;

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        flow: u8,
        priority: i8,
        bytes: u16,
        ttl_ms: Option<u16>,
        pool: u8,
    },
    Pop,
    Cancel(u16),
    Advance(u16),
    Expire(bool),
    Shed,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8, -2..3i8, 0..400u16, proptest::option::of(1..2000u16), 0..3u8).prop_map(
            |(flow, priority, bytes, ttl_ms, pool)| Op::Enqueue { flow, priority, bytes, ttl_ms, pool }
        ),
        3 => Just(Op::Pop),
        1 => any::<u16>().prop_map(Op::Cancel),
        2 => (0..700u16).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Expire),
        1 => Just(Op::Shed),
    ]
}

#[derive(Clone, Debug)]
struct Live {
    flow: u8,
    priority: i64,
    bytes: u64,
    expiry_live: Instant,
    expiry_empty: Instant,
}

const TTL: Duration = Duration::from_millis(1000);
const NO_ENDPOINT_TTL: Duration = Duration::from_millis(300);

struct Model {
    queues: FlowQueues<u64>,
    live: BTreeMap<u64, Live>,
    left: HashSet<u64>,
    now: Instant,
    next_id: u64,
    edf: bool,
}

impl Model {
    fn leave(&mut self, queued: &Queued<u64>) -> Live {
        assert_eq!(queued.id, queued.payload, "payload travels with its ticket");
        assert!(
            self.left.insert(queued.id),
            "ticket {} left twice",
            queued.id
        );
        self.live
            .remove(&queued.id)
            .expect("only queued tickets leave the queues")
    }

    fn check_counters(&self) {
        assert_eq!(self.queues.len(), self.live.len() as u64);
        assert_eq!(
            self.queues.bytes(),
            self.live.values().map(|l| l.bytes).sum::<u64>()
        );
        assert_eq!(
            self.queues.head_priority(),
            self.live.values().map(|l| l.priority).max()
        );
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Enqueue {
                flow,
                priority,
                bytes,
                ttl_ms,
                pool,
            } => {
                let id = self.next_id;
                self.next_id += 1;
                let state = [OPEN, FULL, EMPTY][usize::from(pool)];
                let ttl = ttl_ms.map(|ms| Duration::from_millis(u64::from(ms)));
                let request = FlowRequest {
                    fairness_id: format!("f{flow}"),
                    priority: i64::from(priority),
                    byte_size: u64::from(bytes),
                    ttl,
                };
                match self.queues.enqueue(id, request, id, self.now, state) {
                    Ok(()) => {
                        assert!(
                            priority >= 0 || !state.saturated,
                            "a sheddable request queued while saturated"
                        );
                        let shortened = |budget: Duration| ttl.map_or(budget, |t| t.min(budget));
                        self.live.insert(
                            id,
                            Live {
                                flow,
                                priority: i64::from(priority),
                                bytes: u64::from(bytes),
                                expiry_live: self.now + shortened(TTL),
                                expiry_empty: self.now + shortened(NO_ENDPOINT_TTL),
                            },
                        );
                    }
                    Err((rejection, payload)) => {
                        assert_eq!(payload, id);
                        match rejection.outcome {
                            Outcome::RejectedSaturated => assert!(priority < 0 && state.saturated),
                            Outcome::RejectedNoEndpoints => {
                                assert!(priority < 0 && !state.has_endpoints)
                            }
                            Outcome::RejectedCapacity => {}
                            other => panic!("unexpected refusal {other:?}"),
                        }
                        assert!(self.left.insert(id));
                    }
                }
            }
            Op::Pop => {
                let best = self.live.values().map(|l| l.priority).max();
                match self.queues.pop_next() {
                    None => assert!(self.live.is_empty()),
                    Some(queued) => {
                        let gone = self.leave(&queued);
                        assert_eq!(Some(gone.priority), best, "priority inversion");
                        if !self.edf {
                            let earlier = self.live.iter().any(|(id, l)| {
                                *id < queued.id
                                    && l.flow == gone.flow
                                    && l.priority == gone.priority
                            });
                            assert!(!earlier, "FCFS broken within flow f{}", gone.flow);
                        }
                    }
                }
            }
            Op::Cancel(pick) => {
                let candidates: Vec<u64> = self
                    .live
                    .keys()
                    .copied()
                    .chain(self.left.iter().copied())
                    .collect();
                if let Some(&id) = candidates.get(usize::from(pick) % candidates.len().max(1)) {
                    let was_live = self.live.contains_key(&id);
                    match self.queues.cancel(id) {
                        Some(queued) => {
                            assert!(was_live);
                            self.leave(&queued);
                        }
                        None => assert!(!was_live, "a queued ticket could not be cancelled"),
                    }
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms)),
            Op::Expire(has_endpoints) => {
                let mut out = Vec::new();
                self.queues.expire(self.now, has_endpoints, &mut out);
                let due: HashSet<u64> = self
                    .live
                    .iter()
                    .filter(|(_, l)| if has_endpoints { l.expiry_live } else { l.expiry_empty } <= self.now)
                    .map(|(id, _)| *id)
                    .collect();
                let expired: HashSet<u64> = out.iter().map(|(q, _)| q.id).collect();
                assert_eq!(expired, due, "exactly the due requests expire");
                for (queued, outcome) in &out {
                    let expected = if has_endpoints {
                        Outcome::EvictedTtl
                    } else {
                        Outcome::EvictedNoEndpoints
                    };
                    assert_eq!(*outcome, expected);
                    self.leave(queued);
                }
            }
            Op::Shed => {
                let mut out = Vec::new();
                self.queues.shed_sheddable(&mut out);
                let sheddable: HashSet<u64> = self
                    .live
                    .iter()
                    .filter(|(_, l)| l.priority < 0)
                    .map(|(id, _)| *id)
                    .collect();
                let shed: HashSet<u64> = out.iter().map(|q| q.id).collect();
                assert_eq!(shed, sheddable, "exactly the sheddable requests are shed");
                for queued in &out {
                    self.leave(queued);
                }
            }
        }
        self.check_counters();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_request_leaves_exactly_once_in_priority_order(
        ops in proptest::collection::vec(op(), 1..250),
        round_robin in any::<bool>(),
        edf in any::<bool>(),
        band_cap in 0..12u64,
        total_bytes in prop_oneof![Just(0u64), 200..3000u64],
    ) {
        let cfg = config(|c| {
            c.default_band.fairness = if round_robin { Fairness::RoundRobin } else { Fairness::GlobalStrict };
            c.default_band.ordering = if edf { Ordering::EarliestDeadline } else { Ordering::Fcfs };
            c.default_band.max_requests = band_cap;
            c.max_bytes = total_bytes;
            c.default_request_ttl = Some(TTL);
            c.no_endpoint_request_ttl = Some(NO_ENDPOINT_TTL);
        });
        let mut model = Model {
            queues: FlowQueues::new(cfg),
            live: BTreeMap::new(),
            left: HashSet::new(),
            now: Instant::now(),
            next_id: 0,
            edf,
        };
        for op in ops {
            model.apply(op);
        }
        let mut rest = Vec::new();
        model.queues.drain(&mut rest);
        for queued in &rest {
            model.leave(queued);
        }
        prop_assert!(model.live.is_empty());
        prop_assert_eq!(model.left.len() as u64, model.next_id, "every ticket left exactly once");
        prop_assert!(model.queues.is_empty());
        prop_assert_eq!(model.queues.next_expiry(true), None);
        prop_assert_eq!(model.queues.next_expiry(false), None);
    }

    /// Under round-robin, while a flow stays backlogged, no other flow is
    /// served twice before it is served once.
    #[test]
    fn round_robin_starves_no_backlogged_flow(
        script in proptest::collection::vec((any::<bool>(), 0..5u8), 1..400),
    ) {
        let cfg = config(|c| {
            c.default_band.fairness = Fairness::RoundRobin;
            c.default_band.max_requests = 0;
        });
        let mut queues: FlowQueues<u8> = FlowQueues::new(cfg);
        let now = Instant::now();
        let mut backlog: HashMap<u8, usize> = HashMap::new();
        // For each backlogged flow, the flows served since it was last served.
        let mut served_since: HashMap<u8, HashSet<u8>> = HashMap::new();
        for (id, (is_pop, flow)) in script.into_iter().enumerate() {
            if is_pop {
                let Some(queued) = queues.pop_next() else {
                    prop_assert!(backlog.values().all(|n| *n == 0));
                    continue;
                };
                let served = queued.payload;
                for (other, seen) in &mut served_since {
                    if *other != served && backlog.get(other).copied().unwrap_or(0) > 0 {
                        prop_assert!(seen.insert(served), "f{served} served twice while f{other} waited");
                    }
                }
                served_since.insert(served, HashSet::new());
                let left = backlog.entry(served).or_default();
                *left -= 1;
            } else {
                let waiting = backlog.entry(flow).or_default();
                if *waiting == 0 {
                    served_since.insert(flow, HashSet::new());
                }
                *waiting += 1;
                queues.enqueue(id as u64, request(&format!("f{flow}"), 0, 1), flow, now, OPEN).unwrap();
            }
        }
    }
}
