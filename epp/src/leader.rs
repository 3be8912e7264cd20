//! Active-passive high availability by a `coordination.k8s.io/v1` Lease, as
//! upstream's `--ha-enable-leader-election` does.
//!
//! Every replica serves ext_proc, but only the leader should report ready on
//! the gRPC health service (epp.md §6), so the gateway sends traffic to one
//! replica and its in-memory prefix index stays coherent. [`LeaderElection::run`]
//! publishes leadership on a `watch::Sender<bool>`; the server reads the
//! receiver for its readiness.
//!
//! Each round (every `retry_period`): read the Lease; create it if absent,
//! renew it if held, take it over if free or if its record has not changed
//! for a whole lease duration, else follow. Writes are `replace`s carrying the
//! `resourceVersion` read, so two replicas racing for the Lease cannot both
//! win: the loser gets 409 Conflict and follows. A leader that cannot renew
//! for `renew_deadline` (shorter than the lease duration) steps down before
//! anyone else may take over. On shutdown a leader releases the Lease.
//! The rules are pure functions in [`decision`].

pub mod decision;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};
use decision::{Decision, decide, next_spec, released_spec};

/// Upstream's (controller-runtime's) lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Upstream's renew deadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Upstream's retry period.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// The Lease upstream's EPP uses for the pool `pool` in `namespace`.
pub fn lease_name(namespace: &str, pool: &str) -> String {
    format!("epp-{namespace}-{pool}.gateway-api-inference-extension.sigs.k8s.io")
}

/// A replica identity: the pod name (env `POD_NAME`, else `HOSTNAME`, else
/// `epp`) plus a random suffix, so a restarted pod never mistakes the
/// previous incarnation's lease for its own.
pub fn default_identity() -> String {
    let pod = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "epp".to_owned());
    format!("{pod}_{:016x}", rand::random::<u64>())
}

/// Leader election for one pool's EPP replicas.
#[derive(Clone)]
pub struct LeaderElection {
    client: Client,
    namespace: String,
    lease_name: String,
    identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

/// What this replica last saw of the Lease, on its own clock.
struct Observation {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    since: Instant,
}

impl LeaderElection {
    /// An election for the Lease `lease_name` in `namespace`, as `identity`
    /// (unique per replica: upstream uses the pod name plus a random suffix).
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
        }
    }

    /// Runs the election until `shutdown`, publishing on `is_leader` whether
    /// this replica leads. API errors are logged and retried next round.
    pub async fn run(
        self,
        is_leader: watch::Sender<bool>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut observed: Option<Observation> = None;
        let mut last_renewal: Option<Instant> = None;
        loop {
            match self.round(&api, &mut observed).await {
                Ok(true) => last_renewal = Some(Instant::now()),
                Ok(false) => last_renewal = None,
                Err(err) => {
                    tracing::warn!(%err, lease = %self.lease_name, "leader election round failed")
                }
            }
            let leading = last_renewal.is_some_and(|at| at.elapsed() < self.renew_deadline);
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
            if let Err(err) = self.release(&api).await {
                tracing::warn!(%err, lease = %self.lease_name, "releasing the lease failed; a standby takes over when it expires");
            }
        }
        Ok(())
    }

    /// One attempt: returns whether this replica holds a freshly written Lease.
    async fn round(&self, api: &Api<Lease>, observed: &mut Option<Observation>) -> Result<bool> {
        let current = api
            .get_opt(&self.lease_name)
            .await
            .map_err(|e| self.api_error("reading", &e))?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let unchanged_for = observe(observed, spec);
        let decision = decide(spec, &self.identity, unchanged_for, self.lease_duration);
        if let Decision::Follow { holder } = &decision {
            tracing::debug!(%holder, "following");
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
                api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // The object read carries its resourceVersion: the replace
                // fails with 409 if anyone wrote the Lease since.
                lease.spec = Some(new_spec);
                api.replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(lease = %self.lease_name, "another replica wrote the lease first");
                Ok(false)
            }
            Err(err) => Err(self.api_error("writing", &err)),
        }
    }

    async fn release(&self, api: &Api<Lease>) -> Result<()> {
        let Some(mut lease) = api
            .get_opt(&self.lease_name)
            .await
            .map_err(|e| self.api_error("reading", &e))?
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
            .map_err(|e| self.api_error("releasing", &e))?;
        Ok(())
    }

    fn api_error(&self, action: &str, err: &kube::Error) -> Error {
        Error::LeaderElection(format!(
            "{action} Lease {}/{} failed: {err}",
            self.namespace, self.lease_name
        ))
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
