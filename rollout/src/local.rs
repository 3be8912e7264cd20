//! Local mode's files: no Kubernetes API, the local stack's manifest directory
//! instead.
//!
//! - Rollouts are the `InferenceRollout` documents of the directory's YAML
//!   files; the HTTPRoute a rollout targets is found in whichever file holds it.
//! - A weight write rewrites that file in place ([`route_file`]): only the two
//!   weights change, atomically (temporary file + rename), guarded against a
//!   concurrent edit exactly like the Kubernetes patch. The stack's translator
//!   turns the file into Envoy configuration.
//! - Status lives in `<state dir>/<rollout>.status.json`, written atomically
//!   after every decision, so a restarted controller carries on from the same
//!   step with the same counters ([`StatusFile`]).
//! - [`analysis::LocalAnalysis`] scrapes each pool's picker (the EPP source)
//!   and judges analysis windows;
//! - [`reconcile::reconcile_once`] ties them to the planner;
//! - [`store::LocalStore`] is what the admin API reads and records intents
//!   in.

pub mod analysis;
pub mod reconcile;
pub mod route_file;
pub mod serve;
pub mod store;

use std::path::{Path, PathBuf};

use switchyard_api::rollout::{BackendTarget, RouteTarget, Weights};
use switchyard_api::{InferenceRollout, InferenceRolloutStatus};
use switchyard_check::parse_documents;

use crate::error::{Error, Result};
use crate::route::RouteView;

/// One InferenceRollout read from a manifest file.
#[derive(Clone, Debug)]
pub struct LocalRollout {
    /// The file it came from.
    pub path: PathBuf,
    /// The rollout.
    pub rollout: InferenceRollout,
}

/// Every InferenceRollout in the `.yaml`/`.yml` files of `dir`, sorted by file
/// then position. A file that is not valid YAML, or a rollout that does not
/// parse, is an error naming the file.
pub fn load_rollouts(dir: &Path) -> Result<Vec<LocalRollout>> {
    let mut rollouts = Vec::new();
    for (path, text) in manifest_files(dir)? {
        let source = path.display().to_string();
        let documents = parse_documents(&source, &text).map_err(|err| Error::LocalFile {
            path: source.clone(),
            message: err.to_string(),
        })?;
        for document in documents {
            if document.value["kind"] != "InferenceRollout" {
                continue;
            }
            let rollout: InferenceRollout =
                serde_json::from_value(document.value).map_err(|err| Error::LocalFile {
                    path: source.clone(),
                    message: format!("InferenceRollout at line {}: {err}", document.line),
                })?;
            rollouts.push(LocalRollout {
                path: path.clone(),
                rollout,
            });
        }
    }
    Ok(rollouts)
}

/// The file of `dir` holding the HTTPRoute named `route_name`.
pub fn route_path(dir: &Path, route_name: &str) -> Result<PathBuf> {
    for (path, text) in manifest_files(dir)? {
        let Ok(documents) = parse_documents(&path.display().to_string(), &text) else {
            continue;
        };
        if documents.iter().any(|doc| {
            doc.value["kind"] == "HTTPRoute" && doc.value["metadata"]["name"] == *route_name
        }) {
            return Ok(path);
        }
    }
    Err(Error::LocalFile {
        path: dir.display().to_string(),
        message: format!("no file holds an HTTPRoute named {route_name:?}"),
    })
}

/// The rollout's two backends as the route file holds them now.
pub fn read_route(
    path: &Path,
    target: &RouteTarget,
    stable: &BackendTarget,
    canary: &BackendTarget,
) -> Result<RouteView> {
    let text = read(path)?;
    let found = route_file::find(&path.display().to_string(), &text, target, stable, canary)?;
    Ok(found.view)
}

/// Moves the route file's two weights from `expected` to `desired`, or fails
/// with [`Error::Conflict`] when the file no longer holds `expected`.
pub fn write_weights(
    path: &Path,
    target: &RouteTarget,
    stable: &BackendTarget,
    canary: &BackendTarget,
    expected: &RouteView,
    desired: Weights,
) -> Result<()> {
    let text = read(path)?;
    let source = path.display().to_string();
    let edited = route_file::rewrite(&source, &text, target, stable, canary, expected, desired)?;
    route_file::write_atomically(path, &edited)
}

/// A rollout's status, kept in a JSON file.
#[derive(Clone, Debug)]
pub struct StatusFile {
    path: PathBuf,
}

impl StatusFile {
    /// The status file of rollout `namespace/name` under `state_dir`: one
    /// directory per namespace, so same-named rollouts in two namespaces never
    /// share a state (a namespace cannot contain `/`).
    pub fn new(state_dir: &Path, namespace: &str, name: &str) -> Self {
        Self {
            path: state_dir
                .join(namespace)
                .join(format!("{name}.status.json")),
        }
    }

    /// Where the status is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved status; the empty status when none was saved yet. A file that
    /// does not parse is an error, never silently reset: resetting would start
    /// the rollout over at step one.
    pub fn load(&self) -> Result<InferenceRolloutStatus> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(InferenceRolloutStatus::default());
            }
            Err(err) => return Err(self.problem(format!("reading: {err}"))),
        };
        serde_json::from_str(&text).map_err(|err| {
            self.problem(format!(
                "not a rollout status ({err}); fix it, or delete it to start the rollout over"
            ))
        })
    }

    /// Saves `status` atomically.
    pub fn save(&self, status: &InferenceRolloutStatus) -> Result<()> {
        let text = serde_json::to_string_pretty(status).map_err(|source| Error::Encode {
            what: "rollout status",
            source,
        })?;
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| self.problem(format!("creating its directory: {err}")))?;
        }
        route_file::write_atomically(&self.path, &text)
    }

    fn problem(&self, message: String) -> Error {
        Error::LocalFile {
            path: self.path.display().to_string(),
            message,
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| Error::LocalFile {
        path: path.display().to_string(),
        message: format!("reading: {err}"),
    })
}

/// `(path, text)` of every YAML file directly in `dir`, sorted by name.
fn manifest_files(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let entries = std::fs::read_dir(dir).map_err(|err| Error::LocalFile {
        path: dir.display().to_string(),
        message: format!("reading the manifest directory: {err}"),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| read(&path).map(|text| (path, text)))
        .collect()
}

#[cfg(test)]
mod tests;
