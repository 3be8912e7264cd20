//! The pure half of the Kubernetes source: caches of watched objects, fed by
//! watcher events, and [`pool_state`], which merges them into a [`PoolState`].
//!
//! Nothing here does I/O, so the merge rules (which pool wins, which objects
//! refer to the pool, precedence of objectives and rewrites) are tested
//! without an API server.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::watcher::Event;
use switchyard_api::legacy::convert::{ConvertedModel, convert_model, convert_pool};
use switchyard_api::legacy::{self, LEGACY_GROUP};
use switchyard_api::reference::{INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND};
use switchyard_api::{
    InferenceModelRewrite, InferenceModelRewriteSpec, InferenceObjective, InferencePool,
    InferencePoolSpec, PoolObjectReference,
};

use crate::datastore::PodView;
use crate::source::PoolState;

/// The objects of one watched kind, keyed by name, following the watcher's
/// relist protocol: during a relist (`Init` … `InitDone`) the new list is
/// collected aside and replaces the old one at `InitDone`, so a relist never
/// shows a half-empty pool.
#[derive(Clone, Debug)]
pub struct ObjectCache<T> {
    objects: BTreeMap<String, T>,
    relist: Option<BTreeMap<String, T>>,
    synced: bool,
}

impl<T> Default for ObjectCache<T> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            relist: None,
            synced: false,
        }
    }
}

impl<T> ObjectCache<T> {
    /// Applies one watcher event; `convert` turns an object into what is kept
    /// (`None` drops it, e.g. when it cannot be decoded, and forgets any
    /// earlier version). Returns whether the visible objects may have changed.
    pub fn handle<K: ResourceExt>(
        &mut self,
        event: Event<K>,
        convert: impl Fn(&K) -> Option<T>,
    ) -> bool {
        match event {
            Event::Init => {
                self.relist = Some(BTreeMap::new());
                false
            }
            Event::InitApply(object) => {
                if let (Some(relist), Some(value)) = (self.relist.as_mut(), convert(&object)) {
                    relist.insert(object.name_any(), value);
                }
                false
            }
            Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    self.objects = relist;
                }
                self.synced = true;
                true
            }
            Event::Apply(object) => {
                let name = object.name_any();
                match convert(&object) {
                    Some(value) => self.objects.insert(name, value),
                    None => self.objects.remove(&name),
                };
                true
            }
            Event::Delete(object) => {
                self.objects.remove(&object.name_any());
                true
            }
        }
    }

    /// Forgets everything and waits for a new initial list (the watch was
    /// restarted with different parameters).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Marks the cache as complete without a list: its source is disabled
    /// (CRD absent) or not needed (no pool, so no pods to watch).
    pub fn mark_synced(&mut self) {
        self.synced = true;
    }

    /// Whether the first full list has arrived.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The objects, by name.
    pub fn objects(&self) -> &BTreeMap<String, T> {
        &self.objects
    }
}

/// An InferenceModelRewrite as kept in the cache: its spec plus the creation
/// time that orders it among the others.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRewrite {
    /// `metadata.creationTimestamp`; older objects take precedence.
    pub created: Option<Time>,
    /// The object's spec.
    pub spec: Arc<InferenceModelRewriteSpec>,
}

/// A legacy InferenceModel as kept in the cache: its conversion plus its
/// creation time (the conversion does not carry it, but rewrite precedence
/// needs it).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredModel {
    /// `metadata.creationTimestamp` of the InferenceModel.
    pub created: Option<Time>,
    /// The objective and rewrite it converts to.
    pub converted: ConvertedModel,
}

/// Everything the Kubernetes source watches, in one namespace.
#[derive(Clone, Debug, Default)]
pub struct ClusterObjects {
    /// `inference.networking.k8s.io/v1` InferencePools (at most the named one).
    pub pool: ObjectCache<InferencePool>,
    /// Legacy `inference.networking.x-k8s.io/v1alpha2` InferencePools.
    pub legacy_pool: ObjectCache<legacy::InferencePool>,
    /// The pods the pool's selector matches.
    pub pods: ObjectCache<PodView>,
    /// InferenceObjectives from `inference.networking.x-k8s.io`, then `llm-d.ai`.
    pub objectives: [ObjectCache<InferenceObjective>; 2],
    /// InferenceModelRewrites from `inference.networking.x-k8s.io`, then `llm-d.ai`.
    pub rewrites: [ObjectCache<StoredRewrite>; 2],
    /// Legacy InferenceModels, already converted.
    pub legacy_models: ObjectCache<StoredModel>,
}

/// Which object the pool's definition came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolOrigin {
    /// The `inference.networking.k8s.io/v1` InferencePool.
    V1,
    /// A legacy v1alpha2 InferencePool, converted.
    Legacy,
}

/// The result of a merge: the state to publish plus what the shell needs to
/// watch next and report.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The pool's desired state.
    pub state: PoolState,
    /// Where the pool came from; `None` when no pool of that name exists.
    pub origin: Option<PoolOrigin>,
    /// The pod label selector (`matchLabels`) of the pool, when it exists.
    pub selector: Option<BTreeMap<String, String>>,
    /// Objects that were skipped, with the reason, for the log.
    pub problems: Vec<String>,
}

// === impl ClusterObjects ===

impl ClusterObjects {
    /// Whether every cache has had its first list, so a merge describes the
    /// cluster rather than a partial start-up view.
    pub fn is_synced(&self) -> bool {
        self.pool.is_synced()
            && self.legacy_pool.is_synced()
            && self.pods.is_synced()
            && self.objectives.iter().all(ObjectCache::is_synced)
            && self.rewrites.iter().all(ObjectCache::is_synced)
            && self.legacy_models.is_synced()
    }

    /// The pool's spec: the v1 object when present, else the converted legacy
    /// one. Upstream moved to v1 and a cluster mid-migration may hold both; v1
    /// is the one being maintained, so it wins.
    pub fn pool_spec(
        &self,
        pool_name: &str,
    ) -> (Option<(InferencePoolSpec, PoolOrigin)>, Vec<String>) {
        if let Some(pool) = self.pool.objects().get(pool_name) {
            return (Some((pool.spec.clone(), PoolOrigin::V1)), Vec::new());
        }
        match self.legacy_pool.objects().get(pool_name).map(convert_pool) {
            Some(Ok(pool)) => (Some((pool.spec, PoolOrigin::Legacy)), Vec::new()),
            Some(Err(err)) => (None, vec![format!("ignoring the legacy pool: {err}")]),
            None => (None, Vec::new()),
        }
    }
}

/// Merges the cached objects into the state of the pool named `pool_name`.
///
/// - Pool: see [`ClusterObjects::pool_spec`]; no pool means no endpoints.
/// - Pods: those whose labels match the selector (the watch already filters;
///   this guards the moment the selector changes).
/// - Objectives, by name: converted legacy InferenceModels first, then the
///   `inference.networking.x-k8s.io` objects, then `llm-d.ai` ones, each
///   overriding the previous on a name clash (the newest API wins).
/// - Rewrites: every one referring to the pool, oldest first (ties by API
///   group, then name), which is the precedence order the picker expects.
pub fn pool_state(objects: &ClusterObjects, pool_name: &str) -> Merged {
    let (pool, mut problems) = objects.pool_spec(pool_name);
    let mut state = PoolState {
        pool_name: pool_name.to_owned(),
        ..PoolState::default()
    };
    let Some((spec, origin)) = pool else {
        return Merged {
            state,
            origin: None,
            selector: None,
            problems,
        };
    };
    for port in &spec.target_ports {
        match u16::try_from(port.number) {
            Ok(number) if number != 0 => state.target_ports.push(number),
            _ => problems.push(format!(
                "ignoring target port {} of InferencePool {pool_name}: not in 1..=65535",
                port.number
            )),
        }
    }
    let selector = spec.selector.match_labels;
    state.pods = objects
        .pods
        .objects()
        .values()
        .filter(|pod| selects(&selector, &pod.labels))
        .cloned()
        .collect();

    let mut objectives: HashMap<String, i64> = HashMap::new();
    let mut rewrites: Vec<(Option<&Time>, usize, &str, &Arc<InferenceModelRewriteSpec>)> =
        Vec::new();
    for (
        name,
        StoredModel {
            converted: model, ..
        },
    ) in objects.legacy_models.objects()
    {
        if refers_to(&model.objective.spec.pool_ref, pool_name) {
            let objective_name = model.objective.metadata.name.as_deref().unwrap_or(name);
            objectives.insert(
                objective_name.to_owned(),
                model.objective.spec.effective_priority(),
            );
        }
    }
    for cache in &objects.objectives {
        for (name, objective) in cache.objects() {
            if refers_to(&objective.spec.pool_ref, pool_name) {
                objectives.insert(name.clone(), objective.spec.effective_priority());
            }
        }
    }
    for (rank, cache) in objects.rewrites.iter().enumerate() {
        for (name, rewrite) in cache.objects() {
            if refers_to(&rewrite.spec.pool_ref, pool_name) {
                rewrites.push((rewrite.created.as_ref(), rank, name, &rewrite.spec));
            }
        }
    }
    let legacy_rank = objects.rewrites.len();
    let converted: Vec<(String, Option<Time>, Arc<InferenceModelRewriteSpec>)> = objects
        .legacy_models
        .objects()
        .iter()
        .filter_map(|(name, model)| {
            let rewrite = model.converted.rewrite.as_ref()?;
            refers_to(&rewrite.spec.pool_ref, pool_name).then(|| {
                (
                    name.clone(),
                    model.created.clone(),
                    Arc::new(rewrite.spec.clone()),
                )
            })
        })
        .collect();
    for (name, created, spec) in &converted {
        rewrites.push((created.as_ref(), legacy_rank, name, spec));
    }
    // `None < Some`: an object without a timestamp (only in tests or
    // hand-made documents) sorts first, deterministically.
    rewrites.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    state.objectives = objectives;
    state.rewrites = rewrites.into_iter().map(|r| Arc::clone(r.3)).collect();
    Merged {
        state,
        origin: Some(origin),
        selector: Some(selector),
        problems,
    }
}

/// Whether `reference` names the InferencePool `pool_name`, in the v1 group
/// or the legacy one (objects written for a legacy pool keep its group).
fn refers_to(reference: &PoolObjectReference, pool_name: &str) -> bool {
    reference.kind == INFERENCE_POOL_KIND
        && reference.name == pool_name
        && (reference.group == INFERENCE_POOL_GROUP || reference.group == LEGACY_GROUP)
}

/// Whether `labels` carry every pair of `selector`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The label selector string (`k=v,k2=v2`) for a `matchLabels` map.
pub fn label_selector(match_labels: &BTreeMap<String, String>) -> String {
    match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What the EPP needs of a pod: Ready condition, deletion, IP, labels, annotations.
pub fn pod_view(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
    let ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    PodView {
        name: pod.name_any(),
        ip,
        labels: pod.labels().clone(),
        annotations: pod.annotations().clone(),
        ready,
        deleting: pod.metadata.deletion_timestamp.is_some(),
    }
}

/// A rewrite for the cache.
pub fn stored_rewrite(rewrite: &InferenceModelRewrite) -> StoredRewrite {
    StoredRewrite {
        created: rewrite.metadata.creation_timestamp.clone(),
        spec: Arc::new(rewrite.spec.clone()),
    }
}

/// A legacy InferenceModel for the cache, converted to the current kinds.
pub fn stored_model(model: &legacy::InferenceModel) -> switchyard_api::Result<StoredModel> {
    Ok(StoredModel {
        created: model.metadata.creation_timestamp.clone(),
        converted: convert_model(model)?,
    })
}
