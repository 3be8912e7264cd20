//! What the Kubernetes source does with watch errors, and what it logs about
//! merged states: kept apart from the event loop so each reads on its own.

use kube::runtime::watcher;

use super::Watched;
use super::objects::{ClusterObjects, Merged, ObjectCache, PoolOrigin};

/// Whether the list or watch failed with 404. A real API server answers a
/// path of an API group it does not serve with a plain-text
/// `404 page not found`, which kube turns into a `Status` with code 404 but
/// no `NotFound` reason, so the code is checked as well.
pub(super) fn is_not_found(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => {
            status.code == 404 || status.is_not_found()
        }
        _ => false,
    }
}

/// Disables a kind on 404, lets an optional kind that cannot be listed count
/// as empty, and logs; the watcher itself retries with backoff.
pub(super) fn handle_error(
    objects: &mut ClusterObjects,
    source: Watched,
    err: &watcher::Error,
    namespace: &str,
) {
    let what = describe(source);
    if is_not_found(err) {
        tracing::warn!(
            namespace,
            "the API of {what} is not served (its CRD is not installed); not watching it. \
             Install the CRD and restart the EPP to use it"
        );
        mark_synced(objects, source);
        return;
    }
    // Only the v1 pool and its pods are needed to route. An optional kind
    // that cannot be listed (typically 403: the Role lacks it) counts as
    // empty so the pool is still published; its watch keeps retrying and
    // its objects appear once a list succeeds.
    let optional = !matches!(source, Watched::Pool | Watched::Pods);
    if optional && !cache_synced(objects, source) {
        tracing::warn!(
            %err,
            namespace,
            "cannot list {what}; publishing the pool without them and retrying with backoff \
             (check the EPP's RBAC: get, list and watch on {what} in this namespace)"
        );
        mark_synced(objects, source);
        return;
    }
    tracing::warn!(
        %err,
        namespace,
        "watching {what} failed; retrying with backoff and keeping the last known pool (check the \
         EPP's RBAC: get, list and watch on {what} in this namespace)"
    );
}

fn mark_synced(objects: &mut ClusterObjects, source: Watched) {
    match source {
        Watched::Pool => objects.pool.mark_synced(),
        Watched::LegacyPool => objects.legacy_pool.mark_synced(),
        Watched::Pods => objects.pods.mark_synced(),
        Watched::Objectives(i) => {
            if let Some(cache) = objects.objectives.get_mut(i) {
                cache.mark_synced();
            }
        }
        Watched::Rewrites(i) => {
            if let Some(cache) = objects.rewrites.get_mut(i) {
                cache.mark_synced();
            }
        }
        Watched::LegacyModels => objects.legacy_models.mark_synced(),
    }
}

fn cache_synced(objects: &ClusterObjects, source: Watched) -> bool {
    match source {
        Watched::Pool => objects.pool.is_synced(),
        Watched::LegacyPool => objects.legacy_pool.is_synced(),
        Watched::Pods => objects.pods.is_synced(),
        Watched::Objectives(i) => objects.objectives.get(i).is_none_or(ObjectCache::is_synced),
        Watched::Rewrites(i) => objects.rewrites.get(i).is_none_or(ObjectCache::is_synced),
        Watched::LegacyModels => objects.legacy_models.is_synced(),
    }
}

fn describe(source: Watched) -> &'static str {
    match source {
        Watched::Pool => "inferencepools.inference.networking.k8s.io",
        Watched::LegacyPool => "inferencepools.inference.networking.x-k8s.io",
        Watched::Pods => "pods",
        Watched::Objectives(0) => "inferenceobjectives.inference.networking.x-k8s.io",
        Watched::Objectives(_) => "inferenceobjectives.llm-d.ai",
        Watched::Rewrites(0) => "inferencemodelrewrites.inference.networking.x-k8s.io",
        Watched::Rewrites(_) => "inferencemodelrewrites.llm-d.ai",
        Watched::LegacyModels => "inferencemodels.inference.networking.x-k8s.io",
    }
}

/// Logs what changed in the merge since the last report, not every merge.
#[derive(Default)]
pub(super) struct MergeLog {
    origin: Option<Option<PoolOrigin>>,
    problems: Vec<String>,
}

impl MergeLog {
    pub(super) fn report(&mut self, merged: &Merged, namespace: &str) {
        let pool = &merged.state.pool_name;
        if self.origin != Some(merged.origin) {
            match merged.origin {
                None => tracing::warn!(
                    namespace,
                    pool,
                    "InferencePool {namespace}/{pool} does not exist; serving no endpoints until it is \
                     created (check --pool-name and --pool-namespace)"
                ),
                Some(PoolOrigin::V1) => {
                    tracing::info!(namespace, pool, "watching InferencePool (v1)")
                }
                Some(PoolOrigin::Legacy) => tracing::info!(
                    namespace,
                    pool,
                    "no v1 InferencePool of this name; using the legacy inference.networking.x-k8s.io/v1alpha2 one"
                ),
            }
            self.origin = Some(merged.origin);
        }
        for problem in &merged.problems {
            if !self.problems.contains(problem) {
                tracing::warn!(namespace, pool, "{problem}");
            }
        }
        self.problems.clone_from(&merged.problems);
    }
}
