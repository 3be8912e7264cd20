//! Leader election with a `coordination.k8s.io/v1` Lease, so only one replica
//! reconciles while every replica can serve the admin API.
//!
//! The election is the workspace's one ([`switchyard_runtime::lease`]): expiry
//! judged by how long the Lease has been seen unchanged on this replica's
//! monotonic clock (never by comparing `renewTime` with the local wall clock,
//! which a skewed node gets wrong), each round under a deadline, and a leader
//! that cannot renew within its renew deadline steps down (the binary then
//! exits so Kubernetes restarts it as a follower). Its timings derive from the
//! one `--leader-election-lease-seconds` flag
//! ([`LeaderElection::with_lease_duration`]).

use std::time::Duration;

use kube::Client;
use switchyard_runtime::lease::{Candidate, LeaderElection, LeaseError};

use crate::error::{Error, Result};

/// The identity used without `--leader-election-identity`: the pod name (else
/// the host name, else `switchyard-rollout`) plus a random suffix.
pub fn default_identity() -> String {
    switchyard_runtime::lease::default_identity("switchyard-rollout")
}

/// Reads and writes one Lease for one identity.
#[derive(Clone)]
pub struct LeaderElector {
    election: LeaderElection,
}

// === impl LeaderElector ===

impl LeaderElector {
    /// An elector for Lease `namespace/name` as `identity`, valid for
    /// `duration` without renewal.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            election: LeaderElection::new(client, namespace, name, identity)
                .with_lease_duration(duration),
        }
    }

    /// One round: whether we hold the Lease afterwards. Losing a race (409) is
    /// `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self, candidate: &mut Candidate) -> Result<bool> {
        self.election.round(candidate).await.map_err(into_error)
    }

    /// Waits until this replica leads.
    pub async fn acquire(&self) -> Candidate {
        self.election.acquire().await
    }

    /// Renews while leading; returns when leadership is lost (someone else
    /// holds the Lease, or no renewal succeeded within the renew deadline).
    pub async fn hold(&self, candidate: Candidate) -> Error {
        into_error(self.election.hold(candidate).await)
    }
}

/// The controller's error for a lease failure: API failures keep their
/// action (`get Lease ns/name`), everything else is lost leadership.
fn into_error(err: LeaseError) -> Error {
    match err {
        LeaseError::Api {
            action,
            lease,
            source,
        } => Error::Kube {
            action: format!("{action} Lease {lease}"),
            source,
        },
        other => Error::LostLeadership(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
