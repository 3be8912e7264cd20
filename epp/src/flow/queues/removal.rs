//! The ways a request leaves [`FlowQueues`] other than dispatch: its client
//! going away, its TTL running out, shedding, and shutdown — all through one
//! bookkeeping path, [`FlowQueues::remove_at`], so every index and counter is
//! updated in one place.

use std::sync::Arc;
use std::time::Instant;

use super::{FlowQueues, Location, Queued, TicketId};
use crate::flow::Outcome;

impl<T> FlowQueues<T> {
    /// Removes `id` (its client went away); `None` when it is not queued.
    pub fn cancel(&mut self, id: TicketId) -> Option<Queued<T>> {
        let location = self.index.get(&id)?.clone();
        self.remove_at(&location)
    }

    /// The next instant a request expires under the current regime.
    pub fn next_expiry(&self, has_endpoints: bool) -> Option<Instant> {
        let set = if has_endpoints {
            &self.expiries_live
        } else {
            &self.expiries_empty
        };
        set.first().map(|(at, _)| *at)
    }

    /// Removes every request whose budget for the current regime (pool with
    /// or without endpoints) ran out by `now`, with its outcome; forgets
    /// priority levels idle for longer than [`crate::flow::usage::LEVEL_IDLE_GC`].
    pub fn expire(
        &mut self,
        now: Instant,
        has_endpoints: bool,
        out: &mut Vec<(Queued<T>, Outcome)>,
    ) {
        let bands = &self.bands;
        self.levels.prune(now, |p| bands.contains_key(&p));
        let outcome = if has_endpoints {
            Outcome::EvictedTtl
        } else {
            Outcome::EvictedNoEndpoints
        };
        while let Some(&(at, id)) = if has_endpoints {
            self.expiries_live.first()
        } else {
            self.expiries_empty.first()
        } {
            if at > now {
                break;
            }
            match self.cancel(id) {
                Some(queued) => out.push((queued, outcome)),
                None => {
                    // Not reachable while the index and the sets agree; drop the stray key.
                    self.expiries_live.remove(&(at, id));
                    self.expiries_empty.remove(&(at, id));
                }
            }
        }
    }

    /// Removes every queued sheddable (priority < 0) request whose band may
    /// not dispatch at `saturation`, so sheddable work never waits for
    /// capacity. At saturation ≥ 1.0 that is every sheddable request.
    pub fn shed_sheddable(&mut self, saturation: f64, out: &mut Vec<Queued<T>>) {
        let gated: Vec<i64> = self
            .bands
            .range(..0)
            .map(|(p, _)| *p)
            .filter(|p| !self.open_at(*p, saturation))
            .collect();
        for priority in gated {
            let ids: Vec<TicketId> = self
                .bands
                .get(&priority)
                .into_iter()
                .flat_map(|b| b.flows.values())
                .flat_map(|f| f.entries.values().map(|e| e.id))
                .collect();
            for id in ids {
                out.extend(self.cancel(id));
            }
        }
    }

    /// Removes everything (shutdown), highest priority first.
    pub fn drain(&mut self, out: &mut Vec<Queued<T>>) {
        while let Some(queued) = self.pop_next() {
            out.push(queued);
        }
    }

    pub(super) fn remove_at(&mut self, location: &Location) -> Option<Queued<T>> {
        let mut band_entry = match self.bands.entry(location.priority) {
            std::collections::btree_map::Entry::Occupied(e) => e,
            std::collections::btree_map::Entry::Vacant(_) => return None,
        };
        let band = band_entry.get_mut();
        let flow = band.flows.get_mut(&location.flow)?;
        let entry = flow.entries.remove(&location.key)?;
        flow.bytes -= entry.bytes;
        let flow_empty = flow.entries.is_empty();
        if flow_empty {
            let turn = flow.turn;
            band.flows.remove(&location.flow);
            band.turns.remove(&turn);
        }
        band.requests -= 1;
        band.bytes -= entry.bytes;
        if band.requests == 0 {
            band_entry.remove();
        }
        self.requests -= 1;
        self.bytes -= entry.bytes;
        self.index.remove(&entry.id);
        if let Some(at) = entry.expiry_live {
            self.expiries_live.remove(&(at, entry.id));
        }
        if let Some(at) = entry.expiry_empty {
            self.expiries_empty.remove(&(at, entry.id));
        }
        Some(Queued {
            id: entry.id,
            fairness_id: Arc::clone(&location.flow),
            priority: location.priority,
            bytes: entry.bytes,
            enqueued_at: entry.enqueued_at,
            payload: entry.payload,
        })
    }
}
