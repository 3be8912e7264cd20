//! What the admin API reads and writes in local mode: the rollouts of the
//! manifest directory with the status from their status files, and admin
//! intents recorded into those files.
//!
//! A status file is read, changed and written by both the reconcile loop and
//! the admin API, so both hold [`LocalStore::lock`] around it (local mode only:
//! a person's clicks and a pass a second, far from any request path). A
//! rollout's `resourceVersion` is a hash of its status file, so `If-Match`
//! works as on a cluster: any change to the status moves it.

use std::path::PathBuf;
use std::sync::Arc;

use switchyard_api::InferenceRollout;
use switchyard_api::rollout::Intent;
use tokio::sync::Mutex;

use super::{StatusFile, load_rollouts};
use crate::error::{Error, Result};

/// The namespace of a rollout whose manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The rollouts and status files of one manifest directory.
#[derive(Debug)]
pub struct LocalStore {
    manifest_dir: PathBuf,
    state_dir: PathBuf,
    /// Held around every read-modify-write of a status file.
    pub lock: Arc<Mutex<()>>,
}

impl LocalStore {
    /// The store over `manifest_dir`, with status files under `state_dir`,
    /// sharing `lock` with the reconcile loop.
    pub fn new(manifest_dir: PathBuf, state_dir: PathBuf, lock: Arc<Mutex<()>>) -> Self {
        Self {
            manifest_dir,
            state_dir,
            lock,
        }
    }

    /// The manifest directory.
    pub fn manifest_dir(&self) -> &std::path::Path {
        &self.manifest_dir
    }

    /// Every rollout, with its saved status and resourceVersion.
    pub fn list(&self) -> Result<Vec<InferenceRollout>> {
        load_rollouts(&self.manifest_dir)?
            .into_iter()
            .map(|local| self.with_status(local.rollout))
            .collect()
    }

    /// The rollout `namespace/name`, if the directory holds it.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Option<InferenceRollout>> {
        for local in load_rollouts(&self.manifest_dir)? {
            let rollout = local.rollout;
            let ns = rollout
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_NAMESPACE);
            if ns == namespace && rollout.metadata.name.as_deref() == Some(name) {
                return self.with_status(rollout).map(Some);
            }
        }
        Ok(None)
    }

    /// Records `intent` in the status of `rollout` (read with
    /// [`LocalStore::get`] under the lock); returns the rollout as saved.
    pub fn record_intent(
        &self,
        mut rollout: InferenceRollout,
        intent: Intent,
    ) -> Result<InferenceRollout> {
        let file = self.status_file(&rollout);
        let mut status = file.load()?;
        status.record_intent(intent);
        file.save(&status)?;
        rollout.status = Some(status);
        self.with_status(rollout)
    }

    fn status_file(&self, rollout: &InferenceRollout) -> StatusFile {
        StatusFile::new(
            &self.state_dir,
            rollout
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_NAMESPACE),
            rollout.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    fn with_status(&self, mut rollout: InferenceRollout) -> Result<InferenceRollout> {
        let file = self.status_file(&rollout);
        rollout.status = Some(file.load()?);
        let text = match std::fs::read(file.path()) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => {
                return Err(Error::LocalFile {
                    path: file.path().display().to_string(),
                    message: format!("reading: {err}"),
                });
            }
        };
        rollout.metadata.resource_version =
            Some(format!("{:x}", xxhash_rust::xxh3::xxh3_64(&text)));
        rollout
            .metadata
            .namespace
            .get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned());
        Ok(rollout)
    }
}
