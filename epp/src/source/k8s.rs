//! The Kubernetes [`PoolSource`]: watches the named InferencePool, the pods its
//! selector matches, and the InferenceObjectives, InferenceModelRewrites and
//! legacy InferenceModels that refer to it, all in the pool's namespace.
//!
//! Watches (each a `kube::runtime::watcher` with kube's default backoff):
//! - `inference.networking.k8s.io/v1` InferencePool, `fieldSelector=metadata.name=<pool>`;
//! - the legacy `inference.networking.x-k8s.io/v1alpha2` InferencePool, same
//!   selector: used, converted, only while no v1 pool of that name exists;
//! - Pods with `labelSelector` = the pool's `matchLabels`; the watch restarts
//!   when the selector changes and stops while there is no pool;
//! - InferenceObjective and InferenceModelRewrite in both
//!   `inference.networking.x-k8s.io/v1alpha2` and `llm-d.ai/v1alpha2`;
//! - legacy InferenceModel (`inference.networking.x-k8s.io/v1alpha2`).
//!
//! Upstream's `--pool-group` is therefore not needed to serve a legacy pool:
//! whichever group holds a pool of that name is used, v1 first.
//!
//! RBAC (namespaced Role in the pool's namespace): `get`, `list`, `watch` on
//! `pods`; on `inferencepools` in `inference.networking.k8s.io` and
//! `inference.networking.x-k8s.io`; on `inferenceobjectives` and
//! `inferencemodelrewrites` in `inference.networking.x-k8s.io` and `llm-d.ai`;
//! on `inferencemodels` in `inference.networking.x-k8s.io`. A missing
//! permission is logged (403) and retried. For every kind but the v1 pool
//! and pods it does not hold the pool back: the kind counts as empty until a
//! list succeeds.
//!
//! A kind whose API is not served (404: its CRD is not installed) is disabled
//! with one log line and treated as empty; installing the CRD later needs an
//! EPP restart. Other API errors are logged and retried with backoff while
//! the last published state stays in force.
//!
//! Events update the pure caches of [`objects`] rather than kube's reflector
//! stores: the caches keep converted values (pod views, decoded aliased kinds,
//! converted legacy models) and expose when their first list is complete,
//! which the merge needs and which is tested without a runtime. Once every cache has its
//! first list, a change is published after a short debounce (so a relist or a
//! rollout touching many pods yields one state, not hundreds), and only when
//! the merged [`PoolState`] differs from the last one sent.

mod errors;
pub mod objects;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, TypeMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use switchyard_api::alias::{self, GroupAliased};
use switchyard_api::legacy;
use switchyard_api::{InferenceModelRewrite, InferenceObjective, InferencePool};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Result;
use crate::source::k8s::errors::{MergeLog, handle_error, is_not_found};
use crate::source::k8s::objects::{
    ClusterObjects, label_selector, pod_view, pool_state, stored_model, stored_rewrite,
};
use crate::source::{PoolSource, PoolState};

/// How long changes are gathered before one state is published.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(20);

/// Watches one InferencePool and what belongs to it.
#[derive(Clone)]
pub struct KubernetesSource {
    client: Client,
    namespace: String,
    pool_name: String,
    debounce: Duration,
}

/// Which watch an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    Pool,
    LegacyPool,
    Pods,
    /// Index 0: `inference.networking.x-k8s.io`, 1: `llm-d.ai`.
    Objectives(usize),
    /// Index as for objectives.
    Rewrites(usize),
    LegacyModels,
}

/// One watcher event of any watched kind.
enum Change {
    Pool(Event<InferencePool>),
    LegacyPool(Event<legacy::InferencePool>),
    // Pods are large; boxing keeps every event small to move.
    Pods(Box<Event<Pod>>),
    Objectives(usize, ApiResource, Event<DynamicObject>),
    Rewrites(usize, ApiResource, Event<DynamicObject>),
    LegacyModels(Event<legacy::InferenceModel>),
}

type Update = (Watched, std::result::Result<Change, watcher::Error>);

// === impl KubernetesSource ===

impl KubernetesSource {
    /// A source for the pool `pool_name` in `namespace`.
    pub fn new(client: Client, namespace: impl Into<String>, pool_name: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            pool_name: pool_name.into(),
            debounce: DEFAULT_DEBOUNCE,
        }
    }

    /// Changes how long changes are gathered before publishing.
    pub fn with_debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// The watches that do not depend on the pool's contents.
    fn fixed_watches(&self) -> SelectAll<BoxStream<'static, Update>> {
        let by_name =
            || watcher::Config::default().fields(&format!("metadata.name={}", self.pool_name));
        let ns = self.namespace.as_str();
        let mut all = SelectAll::new();
        all.push(watch_kind(
            Api::<InferencePool>::namespaced(self.client.clone(), ns),
            by_name(),
            Watched::Pool,
            Change::Pool,
        ));
        all.push(watch_kind(
            Api::<legacy::InferencePool>::namespaced(self.client.clone(), ns),
            by_name(),
            Watched::LegacyPool,
            Change::LegacyPool,
        ));
        all.push(watch_kind(
            Api::<legacy::InferenceModel>::namespaced(self.client.clone(), ns),
            watcher::Config::default(),
            Watched::LegacyModels,
            Change::LegacyModels,
        ));
        for (index, resource) in alias::api_resources::<InferenceObjective>()
            .into_iter()
            .enumerate()
        {
            let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &resource);
            all.push(watch_kind(
                api,
                watcher::Config::default(),
                Watched::Objectives(index),
                move |e| Change::Objectives(index, resource.clone(), e),
            ));
        }
        for (index, resource) in alias::api_resources::<InferenceModelRewrite>()
            .into_iter()
            .enumerate()
        {
            let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &resource);
            all.push(watch_kind(
                api,
                watcher::Config::default(),
                Watched::Rewrites(index),
                move |e| Change::Rewrites(index, resource.clone(), e),
            ));
        }
        all
    }

    fn pod_watch(&self, selector: &BTreeMap<String, String>) -> BoxStream<'static, Update> {
        watch_kind(
            Api::<Pod>::namespaced(self.client.clone(), &self.namespace),
            watcher::Config::default().labels(&label_selector(selector)),
            Watched::Pods,
            |event| Change::Pods(Box::new(event)),
        )
    }
}

impl PoolSource for KubernetesSource {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn run(
        self,
        updates: watch::Sender<Arc<PoolState>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut fixed = self.fixed_watches();
        let mut pods: Option<BoxStream<'static, Update>> = None;
        let mut pod_selector: Option<BTreeMap<String, String>> = None;
        let mut objects = ClusterObjects::default();
        let mut log = MergeLog::default();
        let mut deadline: Option<Instant> = None;
        loop {
            let update = tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = updates.closed() => return Ok(()),
                () = sleep_until(deadline) => {
                    deadline = None;
                    let merged = pool_state(&objects, &self.pool_name);
                    log.report(&merged, &self.namespace);
                    if **updates.borrow() != merged.state {
                        updates.send_replace(Arc::new(merged.state));
                    }
                    continue;
                }
                // Disabled watches end; an empty `SelectAll` would answer
                // `None` at once, so it is not polled then.
                update = fixed.next(), if !fixed.is_empty() => match update {
                    Some(update) => update,
                    None => continue,
                },
                update = next_of(&mut pods) => match update {
                    Some(update) => update,
                    None => {
                        pods = None;
                        continue;
                    }
                },
            };
            let (source, result) = update;
            let changed = match result {
                Ok(change) => apply(&mut objects, change),
                Err(err) => {
                    handle_error(&mut objects, source, &err, &self.namespace);
                    true
                }
            };
            if matches!(source, Watched::Pool | Watched::LegacyPool)
                && objects.pool.is_synced()
                && objects.legacy_pool.is_synced()
            {
                let selector = objects
                    .pool_spec(&self.pool_name)
                    .0
                    .map(|(spec, _)| spec.selector.match_labels);
                if selector != pod_selector || (!objects.pods.is_synced() && pods.is_none()) {
                    objects.pods.reset();
                    pods = selector.as_ref().map(|s| self.pod_watch(s));
                    if pods.is_none() {
                        objects.pods.mark_synced();
                    }
                    pod_selector = selector;
                }
            }
            if changed && deadline.is_none() && objects.is_synced() {
                deadline = Some(Instant::now() + self.debounce);
            }
        }
    }
}

/// A watcher on `api`, tagged with `source`, with kube's default backoff on
/// errors. It ends after a 404 (the kind's API is not served), which the loop
/// sees first, so it can disable the source.
fn watch_kind<K>(
    api: Api<K>,
    config: watcher::Config,
    source: Watched,
    wrap: impl Fn(Event<K>) -> Change + Send + Sync + 'static,
) -> BoxStream<'static, Update>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let events = watcher::watcher(api, config).default_backoff().boxed();
    let wrap = Arc::new(wrap);
    stream::unfold(Some(events), move |events| {
        let wrap = Arc::clone(&wrap);
        async move {
            let mut events = events?;
            let item = events.next().await?;
            let stop = item.as_ref().err().is_some_and(is_not_found);
            let update = (source, item.map(|event| wrap(event)));
            Some((update, (!stop).then_some(events)))
        }
    })
    .boxed()
}

async fn next_of<S: Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Feeds one event to its cache; returns whether the merged state may change.
fn apply(objects: &mut ClusterObjects, change: Change) -> bool {
    match change {
        Change::Pool(event) => objects.pool.handle(event, |p| Some(p.clone())),
        Change::LegacyPool(event) => objects.legacy_pool.handle(event, |p| Some(p.clone())),
        Change::Pods(event) => objects.pods.handle(*event, |p| Some(pod_view(p))),
        Change::Objectives(index, resource, event) => match objects.objectives.get_mut(index) {
            Some(cache) => cache.handle(event, |o| decode::<InferenceObjective>(o, &resource)),
            None => false,
        },
        Change::Rewrites(index, resource, event) => match objects.rewrites.get_mut(index) {
            Some(cache) => cache.handle(event, |o| {
                decode::<InferenceModelRewrite>(o, &resource).map(|r| stored_rewrite(&r))
            }),
            None => false,
        },
        Change::LegacyModels(event) => objects.legacy_models.handle(event, |model| {
            stored_model(model)
                .inspect_err(|err| tracing::warn!(%err, "ignoring a legacy InferenceModel"))
                .ok()
        }),
    }
}

/// Decodes an object of an aliased kind read through `resource`. List items
/// carry no `apiVersion`/`kind`, so they are taken from the watched resource.
fn decode<K: GroupAliased>(object: &DynamicObject, resource: &ApiResource) -> Option<K> {
    let mut object = object.clone();
    if object.types.is_none() {
        object.types = Some(TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
    }
    alias::from_dynamic::<K>(&object)
        .inspect_err(
            |err| tracing::warn!(%err, api_version = %resource.api_version, "ignoring an object"),
        )
        .ok()
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod watch_tests;
