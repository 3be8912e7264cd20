//! Where the pool's data comes from: the one place that connects a [`PoolSource`] (and, in
//! time, the metrics scraper) to the [`Datastore`].
//!
//! Hook points for the parts built elsewhere:
//! - **Kubernetes source** (`crate::k8s`): implement [`PoolSource`] and pass it to
//!   [`crate::server::start`] exactly like [`crate::source::standalone::StandaloneSource`];
//!   [`run_pool_source`] applies its states and marks the pool synced for health checks.
//! - **Scraper** (`crate::scrape`): spawn it with [`crate::server::Running::spawn`] after
//!   `start`, giving it [`crate::server::Running::datastore`] and
//!   [`crate::server::Running::shutdown_token`]; it publishes with
//!   `datastore.update(|s| s.with_metrics(scrapes))`, which never loses a concurrent
//!   membership change (see [`Datastore::update`]).
//! - **Leader election**: call [`Readiness::set_leader`] on
//!   [`crate::server::Running::readiness`] (built with leader election on).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::datastore::Datastore;
use crate::error::Result;
use crate::server::health::Readiness;
use crate::source::{PoolSource, PoolState};

/// Applies `state` to the datastore; pods with unusable metadata are skipped and logged.
pub fn apply(datastore: &Datastore, state: &PoolState) {
    let mut errors = Vec::new();
    datastore.update(|current| {
        let (next, skipped) = current.apply(state);
        errors = skipped;
        next
    });
    for err in errors {
        tracing::warn!(%err, "pod skipped");
    }
}

/// Runs `source` until `cancel`, applying each state it publishes. The first applied state
/// marks the pool synced. Returns the source's own error, if it gives up.
pub async fn run_pool_source<S: PoolSource>(
    source: S,
    datastore: Arc<Datastore>,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
) -> Result<()> {
    let kind = source.kind();
    let (updates, mut states) = tokio::sync::watch::channel(Arc::new(PoolState::default()));
    let runner = tokio::spawn(source.run(updates, cancel.clone().cancelled_owned()));
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            changed = states.changed() => if changed.is_err() { break },
        }
        let state = Arc::clone(&states.borrow_and_update());
        apply(&datastore, &state);
        let snapshot = datastore.load();
        tracing::info!(
            source = kind,
            pool = %snapshot.pool_name,
            endpoints = snapshot.endpoints.len(),
            objectives = snapshot.objectives.len(),
            rewrites = snapshot.rewrites.len(),
            "pool updated",
        );
        readiness.set_synced();
    }
    match runner.await {
        Ok(result) => result,
        Err(join) => {
            tracing::error!(%join, source = kind, "pool source task failed");
            Ok(())
        }
    }
}
