//! Leader election with a `coordination.k8s.io/v1` Lease, so only one replica
//! reconciles while every replica can serve the admin API.
//!
//! [`next_step`] decides from the Lease alone (pure); [`LeaderElector`] reads
//! and writes it. Writes carry the Lease's resourceVersion, so of two replicas
//! taking over an expired Lease at once, the apiserver lets exactly one win.
//! A leader that cannot renew within the lease duration stops leading (the
//! binary then exits so Kubernetes restarts it as a follower).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::error::{Error, Result};

/// What to do with the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// There is none: create it, holding it.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    TakeOver,
    /// Someone else holds it: look again after `retry_after`.
    Follow {
        /// The current holder.
        holder: String,
        /// When it expires, at the latest.
        retry_after: Duration,
    },
}

/// Decides from the Lease as read.
pub fn next_step(lease: Option<&Lease>, me: &str, now: Timestamp) -> LeaseStep {
    let Some(lease) = lease else {
        return LeaseStep::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder == me {
        return LeaseStep::Renew;
    }
    if holder.is_empty() {
        return LeaseStep::TakeOver;
    }
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(15).max(1)) * 1000;
    let renewed = spec
        .renew_time
        .or(spec.acquire_time)
        .map_or(i64::MIN / 2, |t| t.0.as_millisecond());
    let expires = renewed + duration_ms;
    let now_ms = now.as_millisecond();
    if now_ms >= expires {
        return LeaseStep::TakeOver;
    }
    LeaseStep::Follow {
        holder,
        retry_after: Duration::from_millis(
            u64::try_from(expires - now_ms).unwrap_or(1000).max(1000),
        ),
    }
}

/// The Lease spec `me` writes for `step` (acquire time kept on renewal,
/// transitions counted on takeover).
pub fn held_by(
    me: &str,
    now: Timestamp,
    duration: Duration,
    previous: Option<&LeaseSpec>,
    step: &LeaseStep,
) -> LeaseSpec {
    let previous = previous.cloned().unwrap_or_default();
    let transitions = previous.lease_transitions.unwrap_or(0);
    let (acquire_time, lease_transitions) = match step {
        LeaseStep::Renew => (previous.acquire_time.or(Some(MicroTime(now))), transitions),
        LeaseStep::Create => (Some(MicroTime(now)), 0),
        LeaseStep::TakeOver | LeaseStep::Follow { .. } => (Some(MicroTime(now)), transitions + 1),
    };
    LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs().max(1)).unwrap_or(15)),
        acquire_time,
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(lease_transitions),
        ..LeaseSpec::default()
    }
}

/// Reads and writes one Lease for one identity.
#[derive(Clone)]
pub struct LeaderElector {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
}

// === impl LeaderElector ===

impl LeaderElector {
    /// An elector for Lease `namespace/name` as `identity`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    /// One attempt: whether we hold the Lease afterwards. Losing a race (409)
    /// is `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = |verb: &str| format!("{verb} Lease {}/{}", self.namespace, self.name);
        let current = api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::Kube {
                action: what("get"),
                source,
            })?;
        let step = next_step(current.as_ref(), &self.identity, now);
        if let LeaseStep::Follow { holder, .. } = &step {
            tracing::debug!(%holder, "another replica leads");
            return Ok(false);
        }
        let spec = held_by(
            &self.identity,
            now,
            self.duration,
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &step,
        );
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                api.create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
                    .map_err(|e| (what("create"), e))
            }
            Some(mut lease) => {
                // `replace` sends the resourceVersion we read: a concurrent writer makes it 409.
                lease.spec = Some(spec);
                api.replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
                    .map_err(|e| (what("update"), e))
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err((_, kube::Error::Api(status))) if status.code == 409 => Ok(false),
            Err((action, source)) => Err(Error::Kube { action, source }),
        }
    }

    /// Waits until this replica leads, trying every third of the lease duration.
    pub async fn acquire(&self) -> Result<()> {
        loop {
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "leader election attempt failed"),
            }
            tokio::time::sleep(self.duration / 3).await;
        }
    }

    /// Renews every third of the lease duration; returns when leadership is
    /// lost (someone else holds the Lease, or renewals failed for a whole
    /// lease duration).
    pub async fn hold(&self) -> Error {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    return Error::LostLeadership(format!(
                        "another replica took Lease {}/{}",
                        self.namespace, self.name
                    ));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "lease renewal failed");
                    if last_renewed.elapsed() >= self.duration {
                        return Error::LostLeadership(format!(
                            "could not renew Lease {}/{} for {:?}: {err}",
                            self.namespace, self.name, self.duration
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
