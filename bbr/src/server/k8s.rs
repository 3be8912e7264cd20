//! Base-model mappings from Kubernetes: ConfigMaps labelled
//! `inference.networking.k8s.io/bbr-managed=true` (GIE) or `inference.llm-d.ai/ipp-managed=true`
//! (llm-d), in upstream's data format (`baseModel`, `adapters`), watched with kube's watcher and
//! published to the [`MappingStore`]. A label selector cannot OR two keys, so each label has
//! its own watch and its own [`Source`].
//!
//! The watch events drive [`ConfigMapMappings`], a plain index with `apply`/`delete`/`reset`
//! that is tested without an API server.
//!
//! # Whose mappings count
//!
//! A mapping decides which pool another tenant's prompts reach, so BBR reads its *home*
//! namespace (its own, by default) and only there unless told to watch every namespace
//! ([`Scope`]). Even then, a mapping from another namespace never overrides one from the
//! file or the home namespace: those are published as their own, later [`Source`], and the
//! store keeps the first claim on a name and reports the conflict.
//!
//! An invalid edit of a ConfigMap keeps that ConfigMap's last good mapping (adapters keep
//! routing while the edit is fixed) and is reported: logged, and counted in
//! `bbr_base_model_configmaps_invalid`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use switchyard_api::protocol::{BBR_MANAGED_LABEL, LLM_D_BBR_MANAGED_LABEL};
use tokio_util::sync::CancellationToken;

use crate::adapters::{Mapping, parse_config_map};
use crate::server::mappings::{MappingStore, Source};

/// One label that marks ConfigMaps of base-model mappings, and the sources it publishes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelledConfigMaps {
    /// The label key; the value must be `true`.
    pub label: &'static str,
    /// Where the watch publishes the home namespace's mappings in the [`MappingStore`].
    pub source: Source,
    /// Where it publishes other namespaces' mappings (ranked after every home mapping).
    pub other_namespaces: Source,
}

/// Which namespaces a watch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// BBR's own namespace (`--configmap-namespace`, by default the pod's): its mappings rank
    /// right after the file's.
    pub home: String,
    /// Also read every other namespace (`--watch-all-namespaces`, needs a ClusterRole).
    pub all_namespaces: bool,
}

impl Scope {
    /// The home namespace only.
    pub fn home(namespace: impl Into<String>) -> Self {
        Scope {
            home: namespace.into(),
            all_namespaces: false,
        }
    }
}

impl LabelledConfigMaps {
    /// The label selector of the watch.
    pub fn label_selector(&self) -> String {
        format!("{}=true", self.label)
    }
}

/// Every label BBR watches: GIE's, and llm-d's for clusters set up for its payload processor.
pub const WATCHED_LABELS: [LabelledConfigMaps; 2] = [
    LabelledConfigMaps {
        label: BBR_MANAGED_LABEL,
        source: Source::ConfigMaps,
        other_namespaces: Source::OtherNamespaceConfigMaps,
    },
    LabelledConfigMaps {
        label: LLM_D_BBR_MANAGED_LABEL,
        source: Source::LlmdConfigMaps,
        other_namespaces: Source::OtherNamespaceLlmdConfigMaps,
    },
];

/// The mappings of every watched ConfigMap, keyed by `(namespace, name)` (so conflicts
/// resolve in a stable order), and the ConfigMaps whose latest version is invalid.
#[derive(Debug, Default)]
pub struct ConfigMapMappings {
    by_object: BTreeMap<(String, String), Mapping>,
    invalid: BTreeSet<(String, String)>,
}

/// Mappings tagged with where they came from, as [`MappingStore::publish`] takes them.
pub type Tagged = Vec<(String, Mapping)>;

fn key(cm: &ConfigMap) -> (String, String) {
    (cm.namespace().unwrap_or_default(), cm.name_any())
}

fn origin((namespace, name): &(String, String)) -> String {
    format!("ConfigMap {namespace}/{name}")
}

impl ConfigMapMappings {
    /// Adds or replaces one ConfigMap. An invalid one keeps its last good mapping, if it had
    /// one, is counted in [`ConfigMapMappings::invalid`], and the error is returned for
    /// logging.
    pub fn apply(&mut self, cm: &ConfigMap) -> crate::Result<()> {
        let key = key(cm);
        let empty = BTreeMap::new();
        match parse_config_map(cm.data.as_ref().unwrap_or(&empty), &origin(&key)) {
            Ok(mapping) => {
                self.invalid.remove(&key);
                self.by_object.insert(key, mapping);
                Ok(())
            }
            Err(err) => {
                self.invalid.insert(key);
                Err(err)
            }
        }
    }

    /// Forgets one ConfigMap.
    pub fn delete(&mut self, cm: &ConfigMap) {
        let key = key(cm);
        self.by_object.remove(&key);
        self.invalid.remove(&key);
    }

    /// Forgets everything (a watch restart re-lists).
    pub fn reset(&mut self) {
        self.by_object.clear();
        self.invalid.clear();
    }

    /// How many ConfigMaps' latest version is invalid.
    pub fn invalid(&self) -> usize {
        self.invalid.len()
    }

    /// The mappings, tagged with their origin, for [`MappingStore::publish`].
    pub fn mappings(&self) -> Tagged {
        self.by_object
            .iter()
            .map(|(key, m)| (origin(key), m.clone()))
            .collect()
    }

    /// The mappings split into those of `home` and those of every other namespace.
    pub fn split(&self, home: &str) -> (Tagged, Tagged) {
        self.by_object
            .iter()
            .map(|(key, m)| (key.0 == home, (origin(key), m.clone())))
            .fold(
                (Vec::new(), Vec::new()),
                |(mut mine, mut others), (is_home, entry)| {
                    if is_home {
                        mine.push(entry);
                    } else {
                        others.push(entry);
                    }
                    (mine, others)
                },
            )
    }

    /// Publishes to `store`: home mappings as `labelled.source`, the others as
    /// `labelled.other_namespaces`, and the count of invalid ConfigMaps.
    fn publish(&self, store: &MappingStore, labelled: LabelledConfigMaps, home: &str) {
        let (mine, others) = self.split(home);
        store.publish(labelled.other_namespaces, others);
        store.publish(labelled.source, mine);
        store.report_invalid(labelled.source, self.invalid());
    }
}

/// Watches the ConfigMaps with one label (in `scope.home`, or every namespace when
/// `scope.all_namespaces`) until cancelled. Watch errors are logged and retried with backoff
/// by kube's watcher; the last good mappings stay in place meanwhile.
pub async fn watch_config_maps(
    client: Client,
    scope: Scope,
    labelled: LabelledConfigMaps,
    store: Arc<MappingStore>,
    cancel: CancellationToken,
) {
    let api: Api<ConfigMap> = if scope.all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, &scope.home)
    };
    let config = watcher::Config::default().labels(&labelled.label_selector());
    let events = kube::runtime::WatchStreamExt::default_backoff(watcher::watcher(api, config));
    let mut events = std::pin::pin!(events);
    let mut index = ConfigMapMappings::default();
    // During a (re)list, changes are collected and published once at InitDone.
    let mut listing = false;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => return,
            event = events.next() => event,
        };
        let Some(event) = event else { return };
        match event {
            Ok(Event::Init) => {
                listing = true;
                index.reset();
            }
            Ok(Event::InitApply(cm)) => log_invalid(index.apply(&cm)),
            Ok(Event::InitDone) => {
                listing = false;
                index.publish(&store, labelled, &scope.home);
            }
            Ok(Event::Apply(cm)) => {
                log_invalid(index.apply(&cm));
                index.publish(&store, labelled, &scope.home);
            }
            Ok(Event::Delete(cm)) => {
                index.delete(&cm);
                if !listing {
                    index.publish(&store, labelled, &scope.home);
                }
            }
            Err(err) => tracing::warn!(
                %err,
                namespace = if scope.all_namespaces { "<all>" } else { scope.home.as_str() },
                label = labelled.label,
                "watching base-model ConfigMaps failed; retrying (check BBR's RBAC: get, list \
                 and watch on configmaps)",
            ),
        }
    }
}

fn log_invalid(result: crate::Result<()>) {
    if let Err(err) = result {
        tracing::warn!(
            %err,
            "invalid base-model ConfigMap; its last good mapping, if it had one, stays in place \
             until it is fixed",
        );
    }
}

#[cfg(test)]
mod tests;
