//! The fleet driver's admission hook: a router may hold arrivals in its own queue, release
//! them later (the hold counts in TTFT, e2e and queue time) or refuse them.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use switchyard_sim::engine::{Micros, Profile};
use switchyard_sim::fleet::{
    Admit, Arrival, Fleet, FleetConfig, ReplicaView, RequestStatus, Router, synthetic_tokens,
};

const HOLD_US: Micros = 50_000;

/// Refuses every third arrival with 429, never releases every fifth kept one, and holds
/// the rest for [`HOLD_US`] before sending them to replica 0.
#[derive(Default)]
struct Holder {
    queue: VecDeque<(u64, Micros)>,
    forgotten: Vec<u64>,
    refused: Vec<u64>,
}

impl Router for Holder {
    fn pick(&mut self, _a: &Arrival, _r: &[ReplicaView<'_>]) -> usize {
        0
    }

    fn admit(&mut self, now: Micros, id: u64, _a: &Arrival, _r: &[ReplicaView<'_>]) -> Admit {
        if id.is_multiple_of(3) {
            self.refused.push(id);
            return Admit::Refuse(429);
        }
        if id.is_multiple_of(5) {
            self.forgotten.push(id);
        } else {
            self.queue.push_back((id, now + HOLD_US));
        }
        Admit::Hold
    }

    fn release(&mut self, now: Micros, _r: &[ReplicaView<'_>], out: &mut Vec<(u64, Admit)>) {
        while let Some(&(id, due)) = self.queue.front() {
            if due > now {
                break;
            }
            self.queue.pop_front();
            out.push((id, Admit::To(7)));
        }
    }

    fn next_wakeup(&self) -> Option<Micros> {
        self.queue.front().map(|&(_, due)| due)
    }
}

#[test]
fn held_requests_are_released_on_their_wakeup_refused_or_left_unfinished() {
    let mut fleet = Fleet::new(FleetConfig::new(2, Profile::Small.config()));
    // Arrivals a second apart: the fleet is idle, so each dispatch starts at once.
    let arrivals: Vec<Arrival> = (0..20u64)
        .map(|i| Arrival::from_tokens(i * 1_000_000, &synthetic_tokens(i, 64), 4, &fleet.hasher()))
        .collect();
    let mut holder = Holder::default();
    let report = fleet.run(arrivals, &mut holder, u64::MAX);
    assert_eq!(report.results.len(), 20);
    for r in &report.results {
        if holder.refused.contains(&r.index) {
            assert_eq!(r.status, RequestStatus::Rejected(429), "{r:?}");
            assert_eq!(r.held_us, 0);
        } else if holder.forgotten.contains(&r.index) {
            assert_eq!(r.status, RequestStatus::Unfinished, "{r:?}");
        } else {
            assert_eq!(r.status, RequestStatus::Completed, "{r:?}");
            // Out-of-range picks wrap: 7 % 2.
            assert_eq!(r.replica, 1);
            assert_eq!(r.held_us, HOLD_US);
            assert!(r.ttft_us.unwrap() > HOLD_US, "{r:?}");
            assert!(r.queue_us.unwrap() >= HOLD_US, "{r:?}");
            assert!(r.e2e_us.unwrap() > r.ttft_us.unwrap(), "{r:?}");
        }
    }
    assert_eq!(holder.refused.len(), 7);
    assert_eq!(report.completed().count(), 20 - 7 - holder.forgotten.len());
}
