//! Properties of the core against a simple model: no priority inversion,
//! FCFS within a flow, TTLs exact, shedding exact, counters exact, every
//! request leaves exactly once, and round-robin starves no flow, under every
//! usage limit policy: the dispatch rule releases the head band exactly when
//! the saturation is below its ceiling, and ceilings never rise as priority
//! falls.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::flow::queues::Queued;
use crate::flow::usage::UsageLimitPolicy;

/// Saturation readings the operations choose from: idle, between the
/// ceilings the policies generate, exactly 1.0 and beyond.
const SATURATIONS: [f64; 8] = [0.0, 0.25, 0.5, 0.6, 0.75, 0.99, 1.0, 1.3];

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        flow: u8,
        priority: i8,
        bytes: u16,
        ttl_ms: Option<u16>,
        pool: u8,
        saturation: u8,
    },
    Pop(u8),
    Cancel(u16),
    Advance(u16),
    Expire(bool),
    Shed(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8, -2..3i8, 0..400u16, proptest::option::of(1..2000u16), 0..2u8, 0..8u8).prop_map(
            |(flow, priority, bytes, ttl_ms, pool, saturation)| Op::Enqueue { flow, priority, bytes, ttl_ms, pool, saturation }
        ),
        3 => (0..8u8).prop_map(Op::Pop),
        1 => any::<u16>().prop_map(Op::Cancel),
        2 => (0..700u16).prop_map(Op::Advance),
        1 => any::<bool>().prop_map(Op::Expire),
        1 => (0..8u8).prop_map(Op::Shed),
    ]
}

/// Every policy shape: upstream's default, a lower static threshold, rank and
/// value spreads, and explicit ceilings (non-increasing, possibly 0).
fn policy() -> impl Strategy<Value = UsageLimitPolicy> {
    prop_oneof![
        Just(UsageLimitPolicy::default()),
        (1..=10u8).prop_map(|t| UsageLimitPolicy::Static {
            threshold: f64::from(t) / 10.0
        }),
        (any::<bool>(), 0..9u8, 1..=10u8).prop_map(|(by_value, low, high)| {
            let min_ceiling = f64::from(low) / 10.0;
            let max_ceiling = f64::from(high.max(low + 1)) / 10.0;
            UsageLimitPolicy::Spread {
                by_value,
                min_ceiling,
                max_ceiling,
            }
        }),
        proptest::collection::vec(0..=10u8, 1..5).prop_map(|mut steps| {
            // Sorted high to low, assigned from priority 2 down: non-increasing.
            steps.sort_unstable_by(|a, b| b.cmp(a));
            UsageLimitPolicy::Explicit(
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (2 - i as i64, f64::from(*s) / 10.0))
                    .collect(),
            )
        }),
    ]
}

/// The ceiling `policy` should give `priority` when `active` are the active
/// levels: written out from the policy's definition, independently of
/// [`crate::flow::usage`].
fn expected_ceiling(policy: &UsageLimitPolicy, active: &BTreeSet<i64>, priority: i64) -> f64 {
    match policy {
        UsageLimitPolicy::Static { threshold } => *threshold,
        UsageLimitPolicy::Spread { max_ceiling, .. } if active.len() <= 1 => *max_ceiling,
        UsageLimitPolicy::Spread {
            by_value: false,
            min_ceiling,
            max_ceiling,
        } => {
            let rank = active.iter().rev().position(|p| *p == priority).unwrap() as f64;
            let n = (active.len() - 1) as f64;
            max_ceiling - rank * (max_ceiling - min_ceiling) / n
        }
        UsageLimitPolicy::Spread {
            by_value: true,
            min_ceiling,
            max_ceiling,
        } => {
            let (low, high) = (*active.first().unwrap(), *active.last().unwrap());
            let r = (priority - low) as f64 / (high - low) as f64;
            min_ceiling + r * (max_ceiling - min_ceiling)
        }
        UsageLimitPolicy::Explicit(map) => {
            let below = map.iter().rfind(|(p, _)| **p <= priority);
            below
                .or_else(|| map.iter().next())
                .map(|(_, c)| *c)
                .unwrap()
        }
    }
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
    policy: UsageLimitPolicy,
    /// Every priority enqueued so far (runs are far shorter than the idle GC).
    active: BTreeSet<i64>,
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

    fn ceiling(&self, priority: i64) -> f64 {
        let ceiling = self.queues.ceiling(priority);
        let expected = expected_ceiling(&self.policy, &self.active, priority);
        assert!(
            (ceiling - expected).abs() < 1e-9,
            "priority {priority}: ceiling {ceiling}, expected {expected} ({:?}, active {:?})",
            self.policy,
            self.active
        );
        ceiling
    }

    /// Ceilings of the active levels lie in [0, 1] and never rise as priority falls.
    fn check_ceilings(&self) {
        let mut above = f64::INFINITY;
        for &priority in self.active.iter().rev() {
            let ceiling = self.ceiling(priority);
            assert!((0.0..=1.0).contains(&ceiling), "{ceiling}");
            assert!(ceiling <= above, "ceilings rise below priority {priority}");
            above = ceiling;
        }
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
                saturation,
            } => {
                let id = self.next_id;
                self.next_id += 1;
                let saturation = SATURATIONS[usize::from(saturation)];
                let state = match pool {
                    0 => PoolState {
                        saturation,
                        has_endpoints: true,
                    },
                    _ => EMPTY,
                };
                self.active.insert(i64::from(priority));
                let open = state.saturation < self.ceiling(i64::from(priority));
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
                            priority >= 0 || (open && state.has_endpoints),
                            "a sheddable request queued while its band may not dispatch"
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
                            Outcome::RejectedSaturated => {
                                assert!(priority < 0 && !open && state.has_endpoints)
                            }
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
            Op::Pop(saturation) => {
                let saturation = SATURATIONS[usize::from(saturation)];
                let best = self.live.values().map(|l| l.priority).max();
                // The head band dispatches exactly when it is below its ceiling.
                let open = best.is_some_and(|p| saturation < self.ceiling(p));
                match self.queues.pop_dispatchable(saturation) {
                    None => assert!(!open, "work-conserving: the head band was open"),
                    Some(queued) => {
                        assert!(open, "dispatched at {saturation} above the head's ceiling");
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
            Op::Shed(saturation) => {
                let saturation = SATURATIONS[usize::from(saturation)];
                let mut out = Vec::new();
                self.queues.shed_sheddable(saturation, &mut out);
                let sheddable: HashSet<u64> = self
                    .live
                    .iter()
                    .filter(|(_, l)| l.priority < 0 && saturation >= self.ceiling(l.priority))
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
        self.check_ceilings();
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
        policy in policy(),
    ) {
        let cfg = config(|c| {
            c.default_band.fairness = if round_robin { Fairness::RoundRobin } else { Fairness::GlobalStrict };
            c.default_band.ordering = if edf { Ordering::EarliestDeadline } else { Ordering::Fcfs };
            c.default_band.max_requests = band_cap;
            c.max_bytes = total_bytes;
            c.default_request_ttl = Some(TTL);
            c.no_endpoint_request_ttl = Some(NO_ENDPOINT_TTL);
            c.usage_limit = policy.clone();
        });
        let mut model = Model {
            queues: FlowQueues::new(cfg),
            live: BTreeMap::new(),
            left: HashSet::new(),
            now: Instant::now(),
            next_id: 0,
            edf,
            policy,
            active: BTreeSet::new(),
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
    /// served twice before it is served once, also when the band is held
    /// back by its ceiling between dispatches (a held-back cycle serves
    /// nobody and does not move the turn).
    #[test]
    fn round_robin_starves_no_backlogged_flow(
        script in proptest::collection::vec((0..3u8, 0..5u8), 1..400),
    ) {
        let cfg = config(|c| {
            c.default_band.fairness = Fairness::RoundRobin;
            c.default_band.max_requests = 0;
            c.usage_limit = UsageLimitPolicy::Static { threshold: 0.5 };
        });
        let mut queues: FlowQueues<u8> = FlowQueues::new(cfg);
        let now = Instant::now();
        let mut backlog: HashMap<u8, usize> = HashMap::new();
        // For each backlogged flow, the flows served since it was last served.
        let mut served_since: HashMap<u8, HashSet<u8>> = HashMap::new();
        for (id, (action, flow)) in script.into_iter().enumerate() {
            if action == 2 {
                // Saturation at the ceiling: nothing may go.
                prop_assert!(queues.pop_dispatchable(0.5).is_none());
            } else if action == 1 {
                let Some(queued) = queues.pop_dispatchable(0.2) else {
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
