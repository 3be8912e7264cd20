//! Base-model mappings from Kubernetes: ConfigMaps labelled
//! `inference.networking.k8s.io/bbr-managed=true` (GIE) or `inference.llm-d.ai/ipp-managed=true`
//! (llm-d), in upstream's data format (`baseModel`, `adapters`), watched with kube's watcher and
//! published to the [`MappingStore`]. A label selector cannot OR two keys, so each label has
//! its own watch and its own [`Source`].
//!
//! The watch events drive [`ConfigMapMappings`], a plain index with `apply`/`delete`/`reset`
//! that is tested without an API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use switchyard_api::protocol::{BBR_MANAGED_LABEL, LLM_D_BBR_MANAGED_LABEL};
use tokio_util::sync::CancellationToken;

use crate::adapters::{Mapping, parse_config_map};
use crate::server::mappings::{MappingStore, Source};

/// One label that marks ConfigMaps of base-model mappings, and the source it publishes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelledConfigMaps {
    /// The label key; the value must be `true`.
    pub label: &'static str,
    /// Where the watch publishes in the [`MappingStore`].
    pub source: Source,
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
    },
    LabelledConfigMaps {
        label: LLM_D_BBR_MANAGED_LABEL,
        source: Source::LlmdConfigMaps,
    },
];

/// The mappings of every watched ConfigMap, keyed by `namespace/name` (so conflicts resolve in
/// a stable order).
#[derive(Debug, Default)]
pub struct ConfigMapMappings {
    by_object: BTreeMap<String, Mapping>,
}

fn key(cm: &ConfigMap) -> String {
    format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any())
}

impl ConfigMapMappings {
    /// Adds or replaces one ConfigMap. An invalid one is dropped (its previous mapping too)
    /// and the error returned for logging.
    pub fn apply(&mut self, cm: &ConfigMap) -> crate::Result<()> {
        let key = key(cm);
        let origin = format!("ConfigMap {key}");
        let empty = BTreeMap::new();
        match parse_config_map(cm.data.as_ref().unwrap_or(&empty), &origin) {
            Ok(mapping) => {
                self.by_object.insert(key, mapping);
                Ok(())
            }
            Err(err) => {
                self.by_object.remove(&key);
                Err(err)
            }
        }
    }

    /// Forgets one ConfigMap.
    pub fn delete(&mut self, cm: &ConfigMap) {
        self.by_object.remove(&key(cm));
    }

    /// Forgets everything (a watch restart re-lists).
    pub fn reset(&mut self) {
        self.by_object.clear();
    }

    /// The mappings, tagged with their origin, for [`MappingStore::publish`].
    pub fn mappings(&self) -> Vec<(String, Mapping)> {
        self.by_object
            .iter()
            .map(|(key, m)| (format!("ConfigMap {key}"), m.clone()))
            .collect()
    }
}

/// Watches the ConfigMaps with one label (in `namespace`, or cluster-wide when `None`) until
/// cancelled. Watch errors are logged and retried with backoff by kube's watcher; the last good
/// mappings stay in place meanwhile.
pub async fn watch_config_maps(
    client: Client,
    namespace: Option<String>,
    labelled: LabelledConfigMaps,
    store: Arc<MappingStore>,
    cancel: CancellationToken,
) {
    let source = labelled.source;
    let api: Api<ConfigMap> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
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
                store.publish(source, index.mappings());
            }
            Ok(Event::Apply(cm)) => {
                log_invalid(index.apply(&cm));
                store.publish(source, index.mappings());
            }
            Ok(Event::Delete(cm)) => {
                index.delete(&cm);
                if !listing {
                    store.publish(source, index.mappings());
                }
            }
            Err(err) => tracing::warn!(
                %err,
                namespace = namespace.as_deref().unwrap_or("<all>"),
                label = labelled.label,
                "watching base-model ConfigMaps failed; retrying (check BBR's RBAC: get, list \
                 and watch on configmaps)",
            ),
        }
    }
}

fn log_invalid(result: crate::Result<()>) {
    if let Err(err) = result {
        tracing::warn!(%err, "ignoring a base-model ConfigMap");
    }
}

#[cfg(test)]
mod tests;
