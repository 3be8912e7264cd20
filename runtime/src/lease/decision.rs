//! The pure rules of Lease-based leader election: what to do with the Lease
//! as last read, and the spec to write for it.
//!
//! Expiry is judged by how long the lease record has been seen *unchanged*
//! on this replica's own monotonic clock, as client-go does, rather than by
//! comparing the lease's `renewTime` with the local wall clock: replicas'
//! clocks may disagree, durations measured locally do not.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// What a replica should do with the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease object exists: create one naming this replica.
    Create,
    /// This replica holds the Lease: renew it.
    Renew,
    /// The Lease is free or its holder stopped renewing: take it over.
    Acquire,
    /// Another replica holds a live Lease.
    Follow {
        /// The current holder.
        holder: String,
    },
}

/// Decides, from the Lease as last read (`None`: no such object), this
/// replica's `identity`, and how long the lease record has been seen
/// unchanged (`unchanged_for`). A lease without a duration uses `default_duration`.
pub fn decide(
    lease: Option<&LeaseSpec>,
    identity: &str,
    unchanged_for: Duration,
    default_duration: Duration,
) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == identity {
        return Decision::Renew;
    }
    if unchanged_for > lease_duration(spec, default_duration) {
        return Decision::Acquire;
    }
    Decision::Follow {
        holder: holder.to_owned(),
    }
}

/// The lease's duration, or `default` when unset or not positive.
pub fn lease_duration(spec: &LeaseSpec, default: Duration) -> Duration {
    spec.lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(default, Duration::from_secs)
}

/// The spec to write for `decision` (`Create`, `Renew` or `Acquire`), based
/// on the spec read (`previous`) at wall-clock time `now`.
pub fn next_spec(
    decision: &Decision,
    previous: Option<&LeaseSpec>,
    identity: &str,
    now: Timestamp,
    duration: Duration,
) -> LeaseSpec {
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1);
    let base = previous.cloned().unwrap_or_default();
    match decision {
        Decision::Renew => LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(seconds),
            ..base
        },
        Decision::Create | Decision::Acquire | Decision::Follow { .. } => {
            let held_before = base
                .holder_identity
                .as_deref()
                .is_some_and(|h| !h.is_empty() && h != identity);
            let transitions = base.lease_transitions.unwrap_or(0);
            LeaseSpec {
                holder_identity: Some(identity.to_owned()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(seconds),
                lease_transitions: Some(if held_before {
                    transitions.saturating_add(1)
                } else {
                    transitions
                }),
                ..base
            }
        }
    }
}

/// The spec that gives the Lease up on shutdown: no holder and a 1 s
/// duration, so a standby takes over at its next attempt instead of waiting
/// for the full lease duration (client-go's release does the same).
pub fn released_spec(previous: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..previous.clone()
    }
}
