//! The base-model index behind a lock-free snapshot, and the standalone file source.
//!
//! Readers (every ext_proc stream) only `load` an `Arc` from an [`ArcSwap`]. Writers — the file
//! poller and the ConfigMap watcher — publish their own list of mappings; the store merges the
//! sources in a fixed order, rebuilds the index off the request path and swaps it in. Writers
//! are serialised by a mutex that readers never touch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::adapters::{BaseModelIndex, Mapping, parse_file};
use crate::error::{Error, Result};
use crate::server::metrics::Metrics;

/// Where mappings come from; the order decides which claim wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// `--base-model-file`.
    File,
    /// ConfigMaps labelled `inference.networking.k8s.io/bbr-managed=true` (GIE).
    ConfigMaps,
    /// ConfigMaps labelled `inference.llm-d.ai/ipp-managed=true` (llm-d's payload processor).
    /// A ConfigMap carrying both labels is read by both watches; its two identical claims do
    /// not conflict, and dropping one label leaves the other watch's copy in place.
    LlmdConfigMaps,
    /// GIE-labelled ConfigMaps outside BBR's home namespace (`--watch-all-namespaces`): they
    /// only add names nobody above claimed.
    OtherNamespaceConfigMaps,
    /// llm-d-labelled ConfigMaps outside BBR's home namespace.
    OtherNamespaceLlmdConfigMaps,
}

/// The current index, and the mappings each source last published.
pub struct MappingStore {
    current: ArcSwap<BaseModelIndex>,
    sources: Mutex<Sources>,
    metrics: Arc<Metrics>,
}

/// What the writers share behind the mutex.
#[derive(Default)]
struct Sources {
    published: BTreeMap<Source, Vec<(String, Mapping)>>,
    /// Invalid ConfigMaps each watch holds (their last good mapping, if any, is kept).
    invalid: BTreeMap<Source, usize>,
}

impl MappingStore {
    /// An empty store.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        MappingStore {
            current: ArcSwap::from_pointee(BaseModelIndex::default()),
            sources: Mutex::new(Sources::default()),
            metrics,
        }
    }

    /// The index for one request: a lock-free snapshot.
    pub fn snapshot(&self) -> Arc<BaseModelIndex> {
        self.current.load_full()
    }

    /// Sets how many ConfigMaps `source`'s watch holds as invalid, for the
    /// `bbr_base_model_configmaps_invalid` gauge.
    pub fn report_invalid(&self, source: Source, invalid: usize) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.invalid.insert(source, invalid);
        self.metrics
            .set_invalid_config_maps(sources.invalid.values().sum());
    }

    /// Replaces what `source` contributes (mappings tagged with their origin) and republishes.
    /// Sources rank in [`Source`] order: on a name two of them claim, the first wins.
    pub fn publish(&self, source: Source, mappings: Vec<(String, Mapping)>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if mappings.is_empty() && !sources.published.contains_key(&source) {
            // Nothing from a source never heard from: nothing changes.
            return;
        }
        sources.published.insert(source, mappings);
        let all = sources
            .published
            .values()
            .flatten()
            .map(|(origin, mapping)| (origin.as_str(), mapping));
        let (index, conflicts) = BaseModelIndex::build(all);
        for c in &conflicts {
            tracing::warn!(
                name = %c.name,
                kept = %c.kept.0,
                kept_from = %c.kept.1,
                ignored = %c.ignored.0,
                ignored_from = %c.ignored.1,
                "two base-model mappings claim the same name; keeping the first, fix the other",
            );
        }
        self.metrics.set_mappings(index.len());
        self.metrics.set_mapping_conflicts(conflicts.len());
        tracing::info!(names = index.len(), ?source, "base-model mappings updated");
        self.current.store(Arc::new(index));
    }
}

/// What identifies a version of the file: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reads and parses the mapping file.
pub fn load_file(path: &Path) -> Result<Vec<(String, Mapping)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::MappingFile {
        path: path.to_path_buf(),
        source,
    })?;
    let origin = path.display().to_string();
    let mappings = parse_file(&text, &origin)?;
    Ok(mappings.into_iter().map(|m| (origin.clone(), m)).collect())
}

/// Loads the file once (an error here stops startup), then polls it and republishes on change
/// until cancelled. A broken edit keeps the last good mappings and is logged.
pub async fn watch_file(
    path: PathBuf,
    interval: Duration,
    store: Arc<MappingStore>,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    store.publish(Source::File, load_file(&path)?);
    let mut last = stamp(&path);
    Ok(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = stamp(&path);
            if now == last {
                continue;
            }
            last = now;
            match load_file(&path) {
                Ok(mappings) => store.publish(Source::File, mappings),
                Err(err) => tracing::error!(%err, "keeping the previous base-model mappings"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(base: &str, adapters: &[&str]) -> Mapping {
        Mapping {
            base_model: base.into(),
            adapters: adapters.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn sources_merge_and_the_file_wins_conflicts() {
        let store = MappingStore::new(Arc::new(Metrics::new()));
        store.publish(
            Source::ConfigMaps,
            vec![("cm/a".into(), mapping("base-cm", &["shared", "cm-only"]))],
        );
        let before = store.snapshot();
        store.publish(
            Source::File,
            vec![("file".into(), mapping("base-file", &["shared"]))],
        );
        let index = store.snapshot();
        assert_eq!(index.base_of("shared"), Some("base-file"));
        assert_eq!(index.base_of("cm-only"), Some("base-cm"));
        // Snapshots taken earlier are unaffected.
        assert_eq!(before.base_of("shared"), Some("base-cm"));
    }

    #[tokio::test]
    async fn file_is_hot_reloaded_and_bad_edits_keep_the_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mappings.yaml");
        std::fs::write(&path, "- baseModel: base\n  adapters: [one]\n").unwrap();
        let store = Arc::new(MappingStore::new(Arc::new(Metrics::new())));
        let cancel = CancellationToken::new();
        let task = watch_file(
            path.clone(),
            Duration::from_millis(10),
            store.clone(),
            cancel.clone(),
        )
        .await
        .unwrap();
        assert_eq!(store.snapshot().base_of("one"), Some("base"));

        std::fs::write(&path, "- baseModel: base\n  adapters: [one, two-longer]\n").unwrap();
        wait_for(|| store.snapshot().base_of("two-longer") == Some("base")).await;

        std::fs::write(&path, "- this is: [not, a mapping\n").unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(store.snapshot().base_of("two-longer"), Some("base"));

        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_or_broken_file_stops_startup_with_the_path() {
        let store = Arc::new(MappingStore::new(Arc::new(Metrics::new())));
        let err = watch_file(
            PathBuf::from("/nonexistent/mappings.yaml"),
            Duration::from_secs(1),
            store,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/mappings.yaml"),
            "{err}"
        );
    }

    async fn wait_for(mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached in 5 s");
    }
}
