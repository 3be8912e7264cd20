//! The pure core of flow control: priority bands of per-flow queues, with
//! caps, TTLs, shedding and the dispatch order
//! (docs/upstream.md#priority-flow-control-and-saturation). No I/O, no
//! clock, no async: every method takes the time and the pool's state as
//! arguments, so the behaviour is tested exhaustively without a runtime.
//!
//! Each queued request carries a caller-chosen payload `T` (the shell stores
//! the reply channel there). Every payload given to [`FlowQueues::enqueue`]
//! comes back exactly once: from `enqueue` itself when refused, or from one
//! of [`pop_next`](FlowQueues::pop_next), [`cancel`](FlowQueues::cancel),
//! [`expire`](FlowQueues::expire), [`shed_sheddable`](FlowQueues::shed_sheddable)
//! or [`drain`](FlowQueues::drain).
//!
//! Dispatch is gated per band by the configured usage limit policy
//! ([`crate::flow::usage`]): the highest non-empty band dispatches while the
//! pool's saturation is below that band's ceiling, and nothing dispatches
//! otherwise ([`FlowQueues::pop_dispatchable`]).
//!
//! Empty flows and bands are removed at once rather than garbage-collected
//! later as upstream does: a flow holds nothing but its queue, and a band's
//! settings come from the config, so nothing is lost and memory follows load.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::flow::config::{BandConfig, Fairness, FlowControlConfig, Ordering};
use crate::flow::usage::ActiveLevels;
use crate::flow::{CapacityLimit, FlowRequest, Outcome, Rejection};
use switchyard_api::protocol::DEFAULT_FAIRNESS_ID;

mod removal;

/// Distinct flows (fairness ids) one band holds at once. A request with a new fairness id
/// beyond it joins the default flow: nothing is refused, and the band's memory and the
/// per-pop scans (global-strict fairness) stay bounded whatever ids callers send.
pub const MAX_FLOWS_PER_BAND: usize = 1024;

/// Identifies one queued request; chosen by the caller, unique while queued.
pub type TicketId = u64;

/// What the pool looks like to admission at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolState {
    /// The saturation detector's reading; each band compares it with its
    /// ceiling (1.0 unless a usage limit policy says otherwise).
    pub saturation: f64,
    /// The pool has at least one ready endpoint.
    pub has_endpoints: bool,
}

impl PoolState {
    /// Whether the pool is full (saturation ≥ 1.0).
    pub fn saturated(&self) -> bool {
        self.saturation >= 1.0
    }
}

/// A request leaving the queues, with its payload.
#[derive(Debug)]
pub struct Queued<T> {
    /// The ticket.
    pub id: TicketId,
    /// The flow's fairness id.
    pub fairness_id: Arc<str>,
    /// The band's priority.
    pub priority: i64,
    /// The request's size in bytes.
    pub bytes: u64,
    /// When it was queued.
    pub enqueued_at: Instant,
    /// The caller's payload.
    pub payload: T,
}

/// A queue's size, for the per-flow gauges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStat {
    /// The flow's fairness id.
    pub fairness_id: Arc<str>,
    /// The flow's priority.
    pub priority: i64,
    /// Requests queued.
    pub requests: u64,
    /// Bytes queued.
    pub bytes: u64,
}

/// Orders requests inside a flow. FCFS keys are `(false, None, seq)`; EDF
/// keys put requests with a deadline first, earliest first, then the rest
/// by arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    no_deadline: bool,
    deadline: Option<Instant>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    id: TicketId,
    bytes: u64,
    enqueued_at: Instant,
    expiry_live: Option<Instant>,
    expiry_empty: Option<Instant>,
    payload: T,
}

#[derive(Debug)]
struct Flow<T> {
    entries: BTreeMap<OrderKey, Entry<T>>,
    bytes: u64,
    /// This flow's key in [`Band::turns`].
    turn: u64,
}

#[derive(Debug)]
struct Band<T> {
    config: BandConfig,
    flows: HashMap<Arc<str>, Flow<T>>,
    /// Round-robin turn order of the non-empty flows, by turn number (first serves next).
    /// Indexed so a flow leaves in O(log flows), not a scan comparing ids.
    turns: BTreeMap<u64, Arc<str>>,
    /// The next turn number handed out.
    next_turn: u64,
    requests: u64,
    bytes: u64,
}

#[derive(Clone, Debug)]
struct Location {
    priority: i64,
    flow: Arc<str>,
    key: OrderKey,
}

/// The queues of every priority band.
#[derive(Debug)]
pub struct FlowQueues<T> {
    config: Arc<FlowControlConfig>,
    bands: BTreeMap<i64, Band<T>>,
    index: HashMap<TicketId, Location>,
    /// The priorities the usage limit policy spreads its ceilings over.
    levels: ActiveLevels,
    /// Expiry while the pool has endpoints, earliest first.
    expiries_live: BTreeSet<(Instant, TicketId)>,
    /// Expiry while the pool has no endpoints, earliest first.
    expiries_empty: BTreeSet<(Instant, TicketId)>,
    seq: u64,
    requests: u64,
    bytes: u64,
}

// === impl FlowQueues ===

impl<T> FlowQueues<T> {
    /// Empty queues under `config`.
    pub fn new(config: Arc<FlowControlConfig>) -> Self {
        Self {
            levels: ActiveLevels::new(config.bands.keys().copied()),
            config,
            bands: BTreeMap::new(),
            index: HashMap::new(),
            expiries_live: BTreeSet::new(),
            expiries_empty: BTreeSet::new(),
            seq: 0,
            requests: 0,
            bytes: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &FlowControlConfig {
        &self.config
    }

    /// Requests queued over all bands.
    pub fn len(&self) -> u64 {
        self.requests
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }

    /// Bytes queued over all bands.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether `id` is queued.
    pub fn contains(&self, id: TicketId) -> bool {
        self.index.contains_key(&id)
    }

    /// The priority of the band that dispatches next.
    pub fn head_priority(&self) -> Option<i64> {
        self.bands.last_key_value().map(|(p, _)| *p)
    }

    /// The saturation at which `priority`'s band stops dispatching, under
    /// the configured usage limit policy and the active priority levels.
    pub fn ceiling(&self, priority: i64) -> f64 {
        self.config
            .usage_limit
            .ceiling(priority, || self.levels.levels(priority))
    }

    /// Whether `priority`'s band may dispatch at `saturation`.
    fn open_at(&self, priority: i64, saturation: f64) -> bool {
        saturation < self.ceiling(priority)
    }

    /// Queue sizes per flow, highest priority first.
    pub fn flow_stats(&self) -> Vec<FlowStat> {
        self.bands
            .iter()
            .rev()
            .flat_map(|(priority, band)| {
                band.flows.iter().map(|(id, flow)| FlowStat {
                    fairness_id: Arc::clone(id),
                    priority: *priority,
                    requests: flow.entries.len() as u64,
                    bytes: flow.bytes,
                })
            })
            .collect()
    }

    /// Queues `request` under ticket `id`, or refuses it (handing `payload`
    /// back): sheddable requests are refused while their band may not
    /// dispatch (saturation at or above its ceiling) or the pool is empty,
    /// any request when its band or the whole layer is at capacity.
    pub fn enqueue(
        &mut self,
        id: TicketId,
        request: FlowRequest,
        payload: T,
        now: Instant,
        pool: PoolState,
    ) -> Result<(), (Rejection, T)> {
        let priority = request.priority;
        let refuse = |outcome| Rejection::new(outcome, priority, Duration::ZERO);
        if self.index.contains_key(&id) {
            return Err((refuse(Outcome::RejectedOther), payload));
        }
        self.levels.touch(priority, now);
        if priority < 0 && !pool.has_endpoints {
            return Err((refuse(Outcome::RejectedNoEndpoints), payload));
        }
        if priority < 0 && !self.open_at(priority, pool.saturation) {
            return Err((refuse(Outcome::RejectedSaturated), payload));
        }
        if let Some(limit) = self.capacity_exceeded(priority, request.byte_size) {
            return Err((refuse(Outcome::RejectedCapacity).with_limit(limit), payload));
        }

        let expiry_live = self
            .config
            .request_ttl(priority, request.ttl)
            .and_then(|ttl| now.checked_add(ttl));
        let expiry_empty = self
            .config
            .no_endpoint_ttl(request.ttl)
            .and_then(|ttl| now.checked_add(ttl));
        let band = self.bands.entry(priority).or_insert_with(|| Band {
            config: self.config.band(priority).clone(),
            flows: HashMap::new(),
            turns: BTreeMap::new(),
            next_turn: 0,
            requests: 0,
            bytes: 0,
        });
        self.seq += 1;
        let key = match band.config.ordering {
            Ordering::Fcfs => OrderKey {
                no_deadline: false,
                deadline: None,
                seq: self.seq,
            },
            Ordering::EarliestDeadline => OrderKey {
                no_deadline: expiry_live.is_none(),
                deadline: expiry_live,
                seq: self.seq,
            },
        };
        // Past the per-band flow cap a new id joins the default flow.
        let id_wanted = if band.flows.len() >= MAX_FLOWS_PER_BAND
            && !band.flows.contains_key(request.fairness_id.as_str())
        {
            DEFAULT_FAIRNESS_ID
        } else {
            request.fairness_id.as_str()
        };
        let flow_id = match band.flows.get_key_value(id_wanted) {
            Some((existing, _)) => Arc::clone(existing),
            None => {
                let fresh: Arc<str> = id_wanted.into();
                let turn = band.next_turn;
                band.next_turn += 1;
                band.turns.insert(turn, Arc::clone(&fresh));
                band.flows.insert(
                    Arc::clone(&fresh),
                    Flow {
                        entries: BTreeMap::new(),
                        bytes: 0,
                        turn,
                    },
                );
                fresh
            }
        };
        let Some(flow) = band.flows.get_mut(&flow_id) else {
            // Inserted just above when it was missing.
            return Err((refuse(Outcome::RejectedOther), payload));
        };
        flow.entries.insert(
            key,
            Entry {
                id,
                bytes: request.byte_size,
                enqueued_at: now,
                expiry_live,
                expiry_empty,
                payload,
            },
        );
        flow.bytes += request.byte_size;
        band.requests += 1;
        band.bytes += request.byte_size;
        self.requests += 1;
        self.bytes += request.byte_size;
        if let Some(at) = expiry_live {
            self.expiries_live.insert((at, id));
        }
        if let Some(at) = expiry_empty {
            self.expiries_empty.insert((at, id));
        }
        self.index.insert(
            id,
            Location {
                priority,
                flow: flow_id,
                key,
            },
        );
        Ok(())
    }

    fn capacity_exceeded(&self, priority: i64, bytes: u64) -> Option<CapacityLimit> {
        let (band_requests, band_bytes, band_config) = match self.bands.get(&priority) {
            Some(band) => (band.requests, band.bytes, &band.config),
            None => (0, 0, self.config.band(priority)),
        };
        let over = |limit: u64, current: u64, add: u64| limit > 0 && current + add > limit;
        if over(band_config.max_requests, band_requests, 1) {
            Some(CapacityLimit::BandRequests(band_config.max_requests))
        } else if over(band_config.max_bytes, band_bytes, bytes) {
            Some(CapacityLimit::BandBytes(band_config.max_bytes))
        } else if over(self.config.max_requests, self.requests, 1) {
            Some(CapacityLimit::TotalRequests(self.config.max_requests))
        } else if over(self.config.max_bytes, self.bytes, bytes) {
            Some(CapacityLimit::TotalBytes(self.config.max_bytes))
        } else {
            None
        }
    }

    /// The dispatch rule: takes the next request if the highest non-empty
    /// band may dispatch at `saturation` (it is below the band's ceiling);
    /// otherwise nothing, because every band below has a ceiling no higher
    /// (strict head-of-line blocking, so no priority inversion).
    pub fn pop_dispatchable(&mut self, saturation: f64) -> Option<Queued<T>> {
        let head = self.head_priority()?;
        if self.open_at(head, saturation) {
            self.pop_next()
        } else {
            None
        }
    }

    /// Takes the next request regardless of saturation: from the
    /// highest-priority band, the flow its fairness policy chooses, that
    /// flow's first request by its ordering policy.
    pub fn pop_next(&mut self) -> Option<Queued<T>> {
        let mut band_entry = self.bands.last_entry()?;
        let priority = *band_entry.key();
        let band = band_entry.get_mut();
        let flow_id = match band.config.fairness {
            Fairness::GlobalStrict => band
                .flows
                .iter()
                .filter_map(|(id, flow)| flow.entries.first_key_value().map(|(k, _)| (k, id)))
                .min_by_key(|(key, _)| **key)
                .map(|(_, id)| Arc::clone(id))?,
            Fairness::RoundRobin => Arc::clone(band.turns.first_key_value()?.1),
        };
        let key = *band.flows.get(&flow_id)?.entries.first_key_value()?.0;
        let taken = self.remove_at(&Location {
            priority,
            flow: Arc::clone(&flow_id),
            key,
        });
        // The flow that was served goes to the back of the turn order.
        if let Some(band) = self.bands.get_mut(&priority)
            && let Some(flow) = band.flows.get_mut(&flow_id)
            && band.turns.first_key_value().map(|(_, id)| id) == Some(&flow_id)
        {
            band.turns.remove(&flow.turn);
            flow.turn = band.next_turn;
            band.next_turn += 1;
            band.turns.insert(flow.turn, flow_id);
        }
        taken
    }
}
