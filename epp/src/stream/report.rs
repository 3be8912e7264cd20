//! What the stream machine tells the shell to record, so the shell keeps no request state of
//! its own: after each event it takes the [`Progress`] (did the request get routed, did the
//! model server answer, did the request end) and feeds its metrics from it, as bbr's driver
//! feeds its metrics from `take_summary()`.
//!
//! The model names are `Arc<str>` so a report shares them with the machine instead of copying
//! them on every request.

use std::sync::Arc;
use std::time::Duration;

use super::usage::Usage;
use crate::refusal::Refusal;

/// The labels a request's metrics are recorded under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestLabels {
    /// The model the client asked for (unknown when the request ended before its body parsed).
    pub client_model: Option<Arc<str>>,
    /// The model it is served as, after a rewrite.
    pub target_model: Option<Arc<str>>,
    /// Its InferenceObjective's priority, computed once from the request headers.
    pub priority: i64,
}

/// The request was routed to an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    /// Its metric labels.
    pub labels: RequestLabels,
    /// The request body's length.
    pub body_bytes: usize,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It was routed and its response ended.
    Completed,
    /// The proxy closed the stream before the request ended (routed or not).
    Closed,
    /// The EPP answered it with a local reply instead of routing it.
    Refused(Refusal),
}

/// The end-of-request report, produced once.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Its metric labels.
    pub labels: RequestLabels,
    /// How it ended.
    pub ending: Ending,
    /// From its request headers to its end.
    pub duration: Duration,
    /// The model server's token usage, when it reported one.
    pub usage: Option<Usage>,
    /// Time to first token of a successful streamed response.
    pub time_to_first_token: Option<Duration>,
    /// Mean time per output token after the first, of a successful streamed response with at
    /// least two tokens.
    pub time_per_output_token: Option<Duration>,
}

/// What happened during one event, for the shell to record. Several parts can be set at once
/// (response headers that end the response both answer and end the request).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Set on the event that routed the request.
    pub routed: Option<Routed>,
    /// Whether a scheduling decision (a route or a refusal) was made while handling a request
    /// message, so the shell can time it; decisions after an admission wait are not timed,
    /// since the wait is not scheduling work.
    pub decided: bool,
    /// The model server's status, on the response headers.
    pub responded: Option<u16>,
    /// The end-of-request summary, on the event that ended the request.
    pub finished: Option<Summary>,
}

impl Progress {
    /// Whether nothing happened worth recording.
    pub fn is_empty(&self) -> bool {
        self.routed.is_none()
            && !self.decided
            && self.responded.is_none()
            && self.finished.is_none()
    }
}
