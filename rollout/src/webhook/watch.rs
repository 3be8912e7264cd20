//! The cluster as the webhook's rules see it: one kube reflector per kind the
//! rules consult, turned into the checker's [`Objects`] view on each review.
//!
//! A kind whose watch has not listed yet (its CRD missing, RBAC denied, the
//! apiserver slow) stays `None` in the view, so references to it are not judged
//! rather than judged against an empty list.

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use switchyard_api::{HttpRoute, InferenceModelRewrite, InferencePool, InferenceRollout};
use switchyard_check::admission::rollout_is_active;
use switchyard_check::{Object, Objects, PoolObject, Scope};
use tokio_util::sync::CancellationToken;

use super::ObjectsView;

/// The reflector stores the rules read.
#[derive(Clone)]
pub struct ClusterView {
    rollouts: Store<InferenceRollout>,
    routes: Store<HttpRoute>,
    pools: Store<InferencePool>,
    rewrites: Store<InferenceModelRewrite>,
    services: Store<PartialObjectMeta<Service>>,
}

impl ClusterView {
    /// Starts the watches (all namespaces) until `cancel`.
    pub fn start(client: &Client, cancel: &CancellationToken) -> Self {
        // Services by metadata only: their names are all the rules need.
        Self {
            rollouts: watch_all(client, cancel),
            routes: watch_all(client, cancel),
            pools: watch_all(client, cancel),
            rewrites: watch_all(client, cancel),
            services: watch_all(client, cancel),
        }
    }
}

fn watch_all<K>(client: &Client, cancel: &CancellationToken) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(Api::<K>::all(client.clone()), watcher::Config::default());
    drive(
        &K::kind(&()),
        reflector::reflector(writer, stream),
        cancel.clone(),
    );
    store
}

/// Polls a reflector stream until cancelled, logging (not stopping on) errors.
fn drive<S, T>(kind: &str, stream: S, cancel: CancellationToken)
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    let kind = kind.to_owned();
    let stream = stream.default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                next = stream.next() => match next {
                    Some(Ok(_)) => {}
                    Some(Err(err)) => tracing::warn!(%kind, %err, "webhook: watch failed; references to this kind are not judged until it lists"),
                    None => return,
                },
            }
        }
    });
}

/// The objects of `store`, or `None` while it has not listed yet.
pub(crate) fn listed<K>(store: &Store<K>) -> Option<Vec<Arc<K>>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let ready = store.wait_until_ready().now_or_never();
    matches!(ready, Some(Ok(()))).then(|| store.state())
}

impl ObjectsView for ClusterView {
    fn objects(&self) -> Objects {
        objects_from(
            listed(&self.rollouts),
            listed(&self.routes),
            listed(&self.pools),
            listed(&self.rewrites),
            listed(&self.services),
        )
    }
}

/// The checker's view of the listed objects; finished rollouts are left out.
pub fn objects_from(
    rollouts: Option<Vec<Arc<InferenceRollout>>>,
    routes: Option<Vec<Arc<HttpRoute>>>,
    pools: Option<Vec<Arc<InferencePool>>>,
    rewrites: Option<Vec<Arc<InferenceModelRewrite>>>,
    services: Option<Vec<Arc<PartialObjectMeta<Service>>>>,
) -> Objects {
    fn object<K: Resource, T>(resource: &K, spec: T) -> Object<T> {
        let meta = resource.meta();
        Object::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
            spec,
        )
    }
    let active = |r: &&Arc<InferenceRollout>| {
        rollout_is_active(r.status.as_ref().and_then(|status| status.phase))
    };
    Objects {
        scope: Scope::Cluster,
        rollouts_unsynced: rollouts.is_none(),
        rollouts: rollouts
            .unwrap_or_default()
            .iter()
            .filter(active)
            .map(|r| object(r.as_ref(), r.spec.clone()))
            .collect(),
        routes: routes.map(|all| {
            all.iter()
                .map(|r| object(r.as_ref(), r.spec.clone()))
                .collect()
        }),
        pools: pools.map(|all| all.iter().map(|p| PoolObject::from(p.as_ref())).collect()),
        rewrites: rewrites.map(|all| {
            all.iter()
                .map(|r| object(r.as_ref(), r.spec.clone()))
                .collect()
        }),
        services: services.map(|all| all.iter().map(|s| object(s.as_ref(), ())).collect()),
    }
}
