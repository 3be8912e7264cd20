//! Leader election by a `coordination.k8s.io/v1` Lease, the one copy the EPP and the
//! rollout controller share.
//!
//! Each round (every `retry_period`): read the Lease; create it if absent, renew it if held,
//! take it over if free or if its record has not changed for a whole lease duration, else
//! follow. Expiry is judged on this replica's monotonic clock by how long the record has
//! been seen *unchanged* (as client-go does), never by comparing `renewTime` with the local
//! wall clock, which is wrong whenever two nodes' clocks disagree (see [`decision`]).
//!
//! Writes are `replace`s carrying the `resourceVersion` read, so two replicas racing for the
//! Lease cannot both win: the loser gets 409 Conflict and follows. Every round runs under a
//! deadline ([`LeaderElection::round_timeout`], and for a leader never past its renew
//! deadline), so a hung apiserver connection cannot keep a replica in a round forever. A
//! leader that has not renewed for `renew_deadline` (shorter than the lease duration) steps
//! down before anyone else may take over; a leader whose renewal loses a race steps down at
//! once. On shutdown, [`LeaderElection::run`] releases the Lease.
//!
//! Three ways to drive it: [`LeaderElection::run`] publishes leadership on a
//! `watch::Sender<bool>` (the EPP: only the leader reports ready);
//! [`LeaderElection::acquire`] then [`LeaderElection::hold`] block until leading and until
//! leadership is lost (the rollout controller: only the leader reconciles);
//! [`LeaderElection::round`] is one round, for tests and custom loops.

pub mod decision;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use decision::{Decision, decide, next_spec, released_spec};

/// Upstream's (controller-runtime's) lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Upstream's renew deadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Upstream's retry period.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The longest one round (a read and at most one write) may take: half the default renew
/// deadline, so a leader gets at least two tries before it must step down.
pub const DEFAULT_ROUND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a round failed or leadership was lost.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The apiserver refused or failed a request (other than a lost write race).
    #[error("{action} Lease {lease} failed: {source}")]
    Api {
        /// `get`, `create`, `update` or `release`.
        action: &'static str,
        /// `namespace/name`.
        lease: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A round did not finish within its deadline.
    #[error("a round on Lease {lease} did not finish within {deadline:?}")]
    TimedOut {
        /// `namespace/name`.
        lease: String,
        /// The deadline it had.
        deadline: Duration,
    },
    /// This replica no longer leads.
    #[error("lost Lease {lease}: {reason}")]
    Lost {
        /// `namespace/name`.
        lease: String,
        /// Another holder, or the last round's error past the renew deadline.
        reason: String,
    },
}

/// A replica identity: the pod name (env `POD_NAME`, else `HOSTNAME`, else
/// `/etc/hostname`, else `fallback`) plus a random suffix, so a restarted pod never
/// mistakes its previous incarnation's lease for its own.
pub fn default_identity(fallback: &str) -> String {
    let pod = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| fallback.to_owned());
    format!("{pod}_{:016x}", rand::random::<u64>())
}

/// Leader election on one Lease for one identity.
#[derive(Clone)]
pub struct LeaderElection {
    client: Client,
    namespace: String,
    lease_name: String,
    identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal; shorter than
    /// `lease_duration`, so it steps down before a standby may take over.
    pub renew_deadline: Duration,
    /// Time between rounds.
    pub retry_period: Duration,
    /// The longest one round may take.
    pub round_timeout: Duration,
}

/// What this replica last saw of the Lease, on its own monotonic clock.
struct Observation {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    since: Instant,
}

/// The state a replica carries from round to round.
#[derive(Default)]
pub struct Candidate {
    observed: Option<Observation>,
    last_renewal: Option<Instant>,
    last_error: Option<LeaseError>,
}

// === impl LeaderElection ===

impl LeaderElection {
    /// An election for the Lease `lease_name` in `namespace`, as `identity` (unique per
    /// replica: see [`default_identity`]), with upstream's timings.
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            round_timeout: DEFAULT_ROUND_TIMEOUT,
        }
    }

    /// Timings derived from one lease duration, in upstream's proportions (15 s / 10 s /
    /// 2 s) rounded to what one flag can say: renew deadline ⅔, retry period and round
    /// timeout ⅓ of it.
    pub fn with_lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = lease_duration * 2 / 3;
        self.retry_period = lease_duration / 3;
        self.round_timeout = lease_duration / 3;
        self
    }

    /// This replica's identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// `namespace/name`, for messages.
    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.lease_name)
    }

    fn api(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Runs the election until `shutdown`, publishing on `is_leader` whether this replica
    /// leads; releases the Lease on the way out if it led. Failed rounds are logged and
    /// retried.
    pub async fn run(self, is_leader: watch::Sender<bool>, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut candidate = Candidate::default();
        loop {
            let leading = self.step(&mut candidate).await;
            if *is_leader.borrow() != leading {
                tracing::info!(identity = %self.identity, lease = %self.lease_name, leading, "leadership changed");
                is_leader.send_replace(leading);
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.retry_period) => {}
            }
        }
        if *is_leader.borrow() {
            is_leader.send_replace(false);
            if let Err(err) = self.release().await {
                tracing::warn!(%err, "releasing the lease failed; a standby takes over when it expires");
            }
        }
    }

    /// Waits until this replica leads, a round every `retry_period`.
    pub async fn acquire(&self) -> Candidate {
        let mut candidate = Candidate::default();
        while !self.step(&mut candidate).await {
            tokio::time::sleep(self.retry_period).await;
        }
        candidate
    }

    /// Renews every `retry_period` while leading (as [`Self::acquire`] left `candidate`);
    /// returns why leadership was lost: another replica holds the Lease, or no renewal
    /// succeeded for `renew_deadline`.
    pub async fn hold(&self, mut candidate: Candidate) -> LeaseError {
        loop {
            tokio::time::sleep(self.retry_period).await;
            if !self.step(&mut candidate).await {
                let reason = match candidate.last_error.take() {
                    Some(err) => format!("no renewal for {:?}: {err}", self.renew_deadline),
                    None => "another replica holds it".to_owned(),
                };
                return LeaseError::Lost {
                    lease: self.lease(),
                    reason,
                };
            }
        }
    }

    /// One round under its deadline; returns whether this replica still leads (renewed
    /// within `renew_deadline` and not beaten to the Lease).
    async fn step(&self, candidate: &mut Candidate) -> bool {
        match self.round(candidate).await {
            Ok(true) => {
                candidate.last_renewal = Some(Instant::now());
                candidate.last_error = None;
            }
            Ok(false) => {
                candidate.last_renewal = None;
                candidate.last_error = None;
            }
            Err(err) => {
                tracing::warn!(%err, "leader election round failed");
                candidate.last_error = Some(err);
            }
        }
        candidate
            .last_renewal
            .is_some_and(|at| at.elapsed() < self.renew_deadline)
    }

    /// One round (read, then at most one write) under its deadline: `round_timeout`, and
    /// for a leader no later than its renew deadline. Returns whether this replica holds a
    /// freshly written Lease; losing a write race is `Ok(false)`, not an error.
    pub async fn round(&self, candidate: &mut Candidate) -> Result<bool, LeaseError> {
        let deadline = match candidate.last_renewal {
            Some(at) => self
                .round_timeout
                .min(self.renew_deadline.saturating_sub(at.elapsed())),
            None => self.round_timeout,
        };
        tokio::time::timeout(deadline, self.read_and_write(&mut candidate.observed))
            .await
            .unwrap_or_else(|_| {
                Err(LeaseError::TimedOut {
                    lease: self.lease(),
                    deadline,
                })
            })
    }

    async fn read_and_write(&self, observed: &mut Option<Observation>) -> Result<bool, LeaseError> {
        let api = self.api();
        let current = api
            .get_opt(&self.lease_name)
            .await
            .map_err(|source| self.api_error("get", source))?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let unchanged_for = observe(observed, spec);
        let decision = decide(spec, &self.identity, unchanged_for, self.lease_duration);
        if let Decision::Follow { holder } = &decision {
            tracing::debug!(%holder, lease = %self.lease_name, "following");
            return Ok(false);
        }
        let new_spec = next_spec(
            &decision,
            spec,
            &self.identity,
            Timestamp::now(),
            self.lease_duration,
        );
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.lease_name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(new_spec),
                };
                api.create(&PostParams::default(), &lease)
                    .await
                    .map_err(|e| ("create", e))
            }
            Some(mut lease) => {
                // The object read carries its resourceVersion: the replace fails with 409
                // if anyone wrote the Lease since.
                lease.spec = Some(new_spec);
                api.replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
                    .map_err(|e| ("update", e))
            }
        };
        match written {
            Ok(_) => Ok(true),
            Err((_, kube::Error::Api(status))) if status.code == 409 => {
                tracing::debug!(lease = %self.lease_name, "another replica wrote the lease first");
                Ok(false)
            }
            Err((action, source)) => Err(self.api_error(action, source)),
        }
    }

    /// Gives the Lease up if this replica holds it, so a standby takes over at its next
    /// round instead of after a whole lease duration.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let api = self.api();
        let Some(mut lease) = api
            .get_opt(&self.lease_name)
            .await
            .map_err(|source| self.api_error("get", source))?
        else {
            return Ok(());
        };
        let Some(spec) = lease
            .spec
            .as_ref()
            .filter(|s| s.holder_identity.as_deref() == Some(&self.identity))
        else {
            return Ok(());
        };
        lease.spec = Some(released_spec(spec, Timestamp::now()));
        api.replace(&self.lease_name, &PostParams::default(), &lease)
            .await
            .map_err(|source| self.api_error("release", source))?;
        Ok(())
    }

    fn api_error(&self, action: &'static str, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            action,
            lease: self.lease(),
            source,
        }
    }
}

/// Records the lease record read and returns how long it has been unchanged.
fn observe(observed: &mut Option<Observation>, spec: Option<&LeaseSpec>) -> Duration {
    let holder = spec.and_then(|s| s.holder_identity.clone());
    let renew_time = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
    match observed {
        Some(seen) if seen.holder == holder && seen.renew_time == renew_time => {
            seen.since.elapsed()
        }
        _ => {
            *observed = Some(Observation {
                holder,
                renew_time,
                since: Instant::now(),
            });
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests;
