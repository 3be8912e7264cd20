//! Flow control (docs/upstream.md#priority-flow-control-and-saturation): priority-ordered
//! admission in front of the
//! scheduler, with per-flow fairness, saturation detection, shedding of
//! sheddable work, caps and queue-wait TTLs.
//!
//! Layers, pure to I/O:
//! - [`config`]: the `flowControl` section and saturation detector of an
//!   `EndpointPickerConfig`, with upstream's names and defaults.
//! - [`queues`]: the pure core. Bands by priority (higher dispatches first,
//!   below 0 is sheddable), flows by fairness id inside a band, caps, TTLs.
//! - [`saturation`]: the `utilization-detector` and `concurrency-detector`
//!   over one [`PoolSnapshot`](crate::datastore::PoolSnapshot).
//! - [`usage`]: the usage limit policies (`static-usage-limit-policy`,
//!   `priority-holdback-policy`): the saturation at which each band stops
//!   dispatching, so lower bands leave headroom for higher ones.
//! - [`request`]: reading (and trusting, or not) the flow headers.
//! - [`metrics`]: upstream's `flow_control_*` figures as atomics.
//! - [`controller`]: the single-owner actor and the [`FlowController`] handle
//!   whose [`admit`](FlowController::admit) the request path awaits.
//!
//! **Why an actor.** The queues are a few ordered maps that every admission,
//! dispatch, expiry and cancellation mutates together; behind a lock, every
//! request of every flow would contend on it. Instead one tokio task owns
//! them outright. A request sends one message on a bounded mpsc (the enqueue
//! buffer; a full buffer makes the caller wait, which is backpressure, not a
//! lock) and awaits a oneshot. Both channels are lock-free on the sender's
//! side. A caller that goes away drops its future, whose guard posts the
//! ticket on a cancellation channel, and the actor removes the entry at once.
//!
//! **Decisions that differ from upstream** (each tested):
//! - Sheddable requests (priority < 0) are refused at once with 429
//!   `rejected-saturated` while their band may not dispatch (saturation at or
//!   above the band's ceiling: 1.0 under the default usage limit policy),
//!   and queued ones are refused when that sets in; llm-d buffers them under
//!   the TTL instead. Refusing keeps sheddable work from holding queue slots
//!   and bytes that non-sheddable work needs, and is what the legacy path
//!   did.
//! - `priority-holdback-policy` with `domain: explicit` gives a priority
//!   missing from `ceilings` the ceiling of the nearest listed priority below
//!   it (upstream would give it 0, a band that never dispatches).
//! - A full queue answers `rejected-saturated` as llm-d does; the body says
//!   which cap (`maxRequests`/`maxBytes`, band or global) was hit.
//! - Expiry is exact (the actor sleeps until the next deadline) rather than
//!   swept every second.
//! - Detectors count work this EPP released but the scrape cannot show yet
//!   (see [`saturation`]), so one burst does not overshoot the thresholds.
//!
//! **Wiring.** [`crate::stream`] reads [`FlowHeaders`] under the configured
//! [`HeaderTrust`] (`--flow-control-trusted-header`), strips
//! [`FlowHeaders::STRIPPED`] and the trust marker from every routed request,
//! and, with flow control on, stops a request with a body in an admitting
//! phase that yields a [`FlowRequest`]; body-less requests skip admission.
//! The ext_proc driver (`server::grpc`) awaits [`FlowController::admit`] in
//! a `tokio::select!` with the inbound stream, so a disconnect withdraws the
//! request; the stream drops the [`Admission`] right after the pick, or
//! answers a [`Rejection`] with its [`Refusal`].
//! `server::start` spawns the controller from the `flowControl` section,
//! registers [`metrics::FlowCollector`] and calls
//! [`FlowController::shutdown`] on drain.

pub mod config;
pub mod controller;
pub mod metrics;
pub mod probe;
pub mod queues;
pub mod request;
pub mod saturation;
pub mod usage;

use std::fmt;
use std::time::Duration;

use crate::refusal::{ErrorCode, Refusal};

pub use config::{BandConfig, DetectorConfig, Fairness, FlowControlConfig, Ordering};
pub use controller::{Admission, FlowController, PoolProbe, SnapshotProbe};
pub use metrics::FlowMetrics;
pub use queues::{FlowQueues, PoolState, TicketId};
pub use request::{FlowHeaders, HeaderTrust};
pub use saturation::{Detector, PoolView, UtilizationThresholds};
pub use usage::UsageLimitPolicy;

/// What admission needs to know about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRequest {
    /// `x-gateway-inference-fairness-id` (default `default-flow`).
    pub fairness_id: String,
    /// The InferenceObjective's priority (0 when unknown; < 0 is sheddable).
    pub priority: i64,
    /// The request body's length, counted against the byte caps.
    pub byte_size: u64,
    /// A per-request queue-wait budget; it can shorten the configured TTL,
    /// never lengthen it.
    pub ttl: Option<Duration>,
}

/// How a request left flow control, with upstream's outcome labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Dispatched to the scheduler.
    Dispatched,
    /// A band or global cap (requests or bytes) was reached.
    RejectedCapacity,
    /// Sheddable (priority < 0) while the pool is saturated.
    RejectedSaturated,
    /// Sheddable while the pool has no endpoints.
    RejectedNoEndpoints,
    /// Refused for another reason (the layer is shutting down).
    RejectedOther,
    /// Waited its whole TTL while the pool had endpoints.
    EvictedTtl,
    /// Waited its whole no-endpoint TTL while the pool had none.
    EvictedNoEndpoints,
    /// The client went away while it waited.
    EvictedContextCancelled,
    /// Removed for another reason (the layer shut down while it waited).
    EvictedOther,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 9] = [
        Self::Dispatched,
        Self::RejectedCapacity,
        Self::RejectedSaturated,
        Self::RejectedNoEndpoints,
        Self::RejectedOther,
        Self::EvictedTtl,
        Self::EvictedNoEndpoints,
        Self::EvictedContextCancelled,
        Self::EvictedOther,
    ];

    /// Upstream's `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dispatched => "Dispatched",
            Self::RejectedCapacity => "RejectedCapacity",
            Self::RejectedSaturated => "RejectedSaturated",
            Self::RejectedNoEndpoints => "RejectedNoEndpoints",
            Self::RejectedOther => "RejectedOther",
            Self::EvictedTtl => "EvictedTTL",
            Self::EvictedNoEndpoints => "EvictedNoEndpoints",
            Self::EvictedContextCancelled => "EvictedContextCancelled",
            Self::EvictedOther => "EvictedOther",
        }
    }

    /// The index of this outcome in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Which cap refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityLimit {
    /// The band's `maxRequests`.
    BandRequests(u64),
    /// The band's `maxBytes`.
    BandBytes(u64),
    /// The global `maxRequests`.
    TotalRequests(u64),
    /// The global `maxBytes`.
    TotalBytes(u64),
}

/// Why a request was not dispatched; maps onto upstream's status codes and
/// `x-llm-d-request-dropped-reason` values (docs/upstream.md#epp-protocol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// How the request left flow control.
    pub outcome: Outcome,
    /// The request's priority.
    pub priority: i64,
    /// How long it waited in the queue.
    pub waited: Duration,
    /// The cap that refused it, for [`Outcome::RejectedCapacity`].
    pub limit: Option<CapacityLimit>,
}

impl Rejection {
    /// A rejection with `outcome`.
    pub fn new(outcome: Outcome, priority: i64, waited: Duration) -> Self {
        Self {
            outcome,
            priority,
            waited,
            limit: None,
        }
    }

    /// Names the cap that refused the request.
    pub fn with_limit(mut self, limit: CapacityLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Upstream's error code: ResourceExhausted (429) when capacity exists
    /// but is contended, ServiceUnavailable (503) when there is none (no
    /// endpoints, shutting down, client gone).
    pub fn error_code(&self) -> ErrorCode {
        match self.outcome {
            Outcome::RejectedCapacity | Outcome::RejectedSaturated | Outcome::EvictedTtl => {
                ErrorCode::ResourceExhausted
            }
            Outcome::RejectedNoEndpoints
            | Outcome::EvictedNoEndpoints
            | Outcome::EvictedContextCancelled
            | Outcome::RejectedOther
            | Outcome::EvictedOther => ErrorCode::ServiceUnavailable,
            // Never a rejection; answered as an internal error if it ever is.
            Outcome::Dispatched => ErrorCode::Internal,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.error_code().status()
    }

    /// The `x-llm-d-request-dropped-reason` value. A full queue reports
    /// `rejected-saturated`, as llm-d does; the message says which cap.
    pub fn dropped_reason(&self) -> &'static str {
        match self.outcome {
            Outcome::RejectedCapacity | Outcome::RejectedSaturated => "rejected-saturated",
            Outcome::RejectedNoEndpoints | Outcome::EvictedNoEndpoints => "rejected-no-endpoints",
            Outcome::EvictedTtl => "rejected-ttl-expired",
            Outcome::EvictedContextCancelled => "rejected-context-cancelled",
            Outcome::RejectedOther | Outcome::EvictedOther => "rejected-shutting-down",
            Outcome::Dispatched => "rejected-internal",
        }
    }

    /// The local reply that ends the request: the code's status, the dropped reason and
    /// this rejection's text.
    pub fn refusal(&self) -> Refusal {
        Refusal::new(self.error_code(), self.to_string()).with_reason(self.dropped_reason())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let priority = self.priority;
        match (self.outcome, self.limit) {
            (Outcome::RejectedCapacity, Some(CapacityLimit::BandRequests(n))) => write!(
                f,
                "queue at capacity: priority band {priority} already holds {n} requests (its maxRequests)"
            ),
            (Outcome::RejectedCapacity, Some(CapacityLimit::BandBytes(n))) => write!(
                f,
                "queue at capacity: priority band {priority} would exceed {n} queued bytes (its maxBytes)"
            ),
            (Outcome::RejectedCapacity, Some(CapacityLimit::TotalRequests(n))) => write!(
                f,
                "queue at capacity: {n} requests are queued (flowControl.maxRequests)"
            ),
            (Outcome::RejectedCapacity, Some(CapacityLimit::TotalBytes(n))) => write!(
                f,
                "queue at capacity: queued bytes would exceed {n} (flowControl.maxBytes)"
            ),
            (Outcome::RejectedCapacity, None) => f.write_str("queue at capacity"),
            (Outcome::RejectedSaturated, _) => write!(
                f,
                "system saturated, sheddable request dropped (priority {priority} < 0)"
            ),
            (Outcome::RejectedNoEndpoints, _) => {
                f.write_str("no endpoints available for a sheddable request")
            }
            (Outcome::EvictedTtl, _) => write!(
                f,
                "request timed out in queue after {:.3}s (defaultRequestTTL)",
                self.waited.as_secs_f64()
            ),
            (Outcome::EvictedNoEndpoints, _) => write!(
                f,
                "request timed out in queue after {:.3}s and no endpoints are available (noEndpointRequestTTL)",
                self.waited.as_secs_f64()
            ),
            (Outcome::EvictedContextCancelled, _) => f.write_str("client disconnected"),
            (Outcome::RejectedOther | Outcome::EvictedOther, _) => {
                f.write_str("flow controller shutting down")
            }
            (Outcome::Dispatched, _) => f.write_str("dispatched"),
        }
    }
}

#[cfg(test)]
mod tests;
