//! `grpc.health.v1` with upstream's service names
//! (docs/upstream.md#operations-flags-health-metrics).
//!
//! - `liveness` is SERVING while the process runs and is not draining, in both modes: a pool
//!   that cannot sync (apiserver unreachable, a 403 on the watch) is a readiness problem, and
//!   a kubelet restarting the EPP for it would only hide the error in a crash loop.
//! - `readiness`, `""` and `envoy.service.ext_proc.v3.ExternalProcessor` are SERVING once the
//!   pool has been synced (the first state from the pool source was applied) and, when leader
//!   election is on, this replica leads.
//! - Without leader election every other name reports the sync status, as upstream does. With
//!   it, unknown names get NOT_FOUND (SERVICE_UNKNOWN).
//!
//! Draining flips everything to NOT_SERVING so Envoy and the kubelet stop sending traffic.
//! The state is three atomics; `Watch` is unimplemented, as upstream.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::Stream;
use switchyard_api::protocol::EXT_PROC_SERVICE_NAME;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The liveness service name.
pub const LIVENESS: &str = "liveness";
/// The readiness service name.
pub const READINESS: &str = "readiness";

/// What health checks report; shared by the server, the pool wiring and (later) leader election.
#[derive(Debug)]
pub struct Readiness {
    synced: AtomicBool,
    draining: AtomicBool,
    /// `Some` when leader election is on: whether this replica leads.
    leader: Option<AtomicBool>,
}

impl Readiness {
    /// Not synced yet; `leader_election` says whether leadership gates readiness.
    pub fn new(leader_election: bool) -> Self {
        Self {
            synced: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            leader: leader_election.then(|| AtomicBool::new(false)),
        }
    }

    /// Called once the pool source's first state is in the datastore.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Called by leader election when leadership is gained or lost (no-op without it).
    pub fn set_leader(&self, leading: bool) {
        if let Some(leader) = &self.leader {
            leader.store(leading, Ordering::Release);
        }
    }

    /// Called at the start of a drain.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the pool is synced.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Whether this replica should receive traffic.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
            && self.is_synced()
            && self
                .leader
                .as_ref()
                .is_none_or(|l| l.load(Ordering::Acquire))
    }

    /// The status of `service`; `None` for a name upstream does not know.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        let serving = |yes: bool| {
            if yes {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let live = !self.draining.load(Ordering::Acquire);
        if service == LIVENESS {
            return Some(serving(live));
        }
        if self.leader.is_none() {
            return Some(serving(self.is_ready()));
        }
        match service {
            READINESS | "" | EXT_PROC_SERVICE_NAME => Some(serving(self.is_ready())),
            _ => None,
        }
    }
}

/// The health service over shared [`Readiness`].
#[derive(Clone, Debug)]
pub struct HealthService {
    readiness: Arc<Readiness>,
}

impl HealthService {
    /// A service reporting `readiness`.
    pub fn new(readiness: Arc<Readiness>) -> HealthServer<Self> {
        HealthServer::new(Self { readiness })
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match self.readiness.status(&service) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status as i32,
            })),
            None => Err(Status::not_found(format!(
                "unknown service `{service}`; use `{LIVENESS}`, `{READINESS}`, `` or \
                 `{EXT_PROC_SERVICE_NAME}`"
            ))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented(
            "Watch is not implemented (as upstream); poll Check",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_leader_election_every_other_name_reports_sync() {
        let r = Readiness::new(false);
        for name in [READINESS, "", EXT_PROC_SERVICE_NAME, "anything"] {
            assert_eq!(r.status(name), Some(ServingStatus::NotServing), "{name}");
        }
        r.set_synced();
        for name in [READINESS, "", EXT_PROC_SERVICE_NAME, "anything"] {
            assert_eq!(r.status(name), Some(ServingStatus::Serving), "{name}");
        }
        r.set_draining();
        assert_eq!(r.status(READINESS), Some(ServingStatus::NotServing));
    }

    /// M6: liveness is "not draining", never the pool's sync, with and without leader
    /// election; before, a pool that could not sync got the EPP restarted in a crash loop.
    #[test]
    fn m6_liveness_is_independent_of_pool_sync_in_both_modes() {
        for leader_election in [false, true] {
            let r = Readiness::new(leader_election);
            assert_eq!(
                r.status(LIVENESS),
                Some(ServingStatus::Serving),
                "not synced, leader election {leader_election}"
            );
            assert_eq!(r.status(READINESS), Some(ServingStatus::NotServing));
            r.set_synced();
            assert_eq!(r.status(LIVENESS), Some(ServingStatus::Serving));
            r.set_draining();
            assert_eq!(
                r.status(LIVENESS),
                Some(ServingStatus::NotServing),
                "draining, leader election {leader_election}"
            );
        }
    }

    #[test]
    fn with_leader_election_readiness_needs_leadership() {
        let r = Readiness::new(true);
        r.set_synced();
        assert_eq!(r.status(LIVENESS), Some(ServingStatus::Serving));
        assert_eq!(r.status(READINESS), Some(ServingStatus::NotServing));
        assert_eq!(r.status("unknown"), None);
        r.set_leader(true);
        for name in [READINESS, "", EXT_PROC_SERVICE_NAME] {
            assert_eq!(r.status(name), Some(ServingStatus::Serving), "{name}");
        }
        r.set_leader(false);
        assert_eq!(r.status(""), Some(ServingStatus::NotServing));
    }
}
