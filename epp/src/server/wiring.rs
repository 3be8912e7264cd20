//! How `switchyard-epp` assembles its optional parts around [`crate::server::start`]: the
//! pool source (Kubernetes or the standalone file) and leader election. The scrapers run
//! inside `start` with the source ([`crate::scrape::run_pool`]: one owner task writes both
//! membership and metrics into the datastore).

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::leader::{LeaderElection, default_identity, lease_name};
use crate::server::health::Readiness;

/// Runs leader election for `pool` in `namespace` until `cancel`, reflecting leadership in
/// `readiness` (only the leader reports ready; every replica serves ext_proc, as upstream).
pub async fn run_leader_election(
    client: kube::Client,
    namespace: String,
    pool: String,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
) -> Result<()> {
    let election = LeaderElection::new(
        client,
        namespace.clone(),
        lease_name(&namespace, &pool),
        default_identity(),
    );
    let (is_leader, mut leading) = watch::channel(false);
    let follow = tokio::spawn(async move {
        while leading.changed().await.is_ok() {
            readiness.set_leader(*leading.borrow_and_update());
        }
    });
    election.run(is_leader, cancel.cancelled_owned()).await;
    let _ = follow.await;
    Ok(())
}
