//! The local-mode loop: every rollout of the manifest directory reconciled on
//! a fixed cadence, and after a weight write the directory translated again
//! onto the running Envoy's route file.
//!
//! The local stack does not watch its manifest directory, so the controller
//! applies its own writes: it plans the stack with the same ports as
//! `cargo xtask up` (the plan is deterministic for a fixed first port) and
//! replaces only Envoy's routes, which Envoy's file watcher picks up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use switchyard_local::plan::PlanOptions;
use switchyard_local::stack::LocalStack;
use switchyard_local::translate::ConfigDir;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::analysis::LocalAnalysis;
use super::load_rollouts;
use super::reconcile::reconcile_once;
use crate::error::{Error, Result};

/// What the local loop reads and writes.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// The manifest directory (rollouts, routes, local-endpoints.yaml).
    pub manifest_dir: PathBuf,
    /// Where each rollout's status file lives.
    pub state_dir: PathBuf,
    /// Time between passes.
    pub interval: Duration,
    /// The stack's ports, as `cargo xtask up` planned them: where each pool's
    /// picker serves its metrics, and how to translate for Envoy.
    pub plan: PlanOptions,
    /// The running Envoy's configuration directory; `None` rewrites the
    /// route files only.
    pub envoy_dir: Option<PathBuf>,
    /// Held around each reconcile, shared with the admin API's
    /// [`LocalStore`](super::store::LocalStore): both rewrite status files.
    pub status_lock: Arc<tokio::sync::Mutex<()>>,
}

/// The analysis over the pickers of the stack `options` describes. A
/// directory that does not plan (no local-endpoints.yaml) leaves no picker to
/// scrape: every metric is then judged NoData with a message saying so.
pub fn local_analysis(options: &LocalOptions) -> LocalAnalysis {
    match LocalStack::load(&options.manifest_dir, &options.plan) {
        Ok(stack) => LocalAnalysis::from_plan(&stack.plan),
        Err(err) => {
            warn!(error = %err, "cannot plan the local stack; metrics will have no data");
            LocalAnalysis::new(Default::default())
        }
    }
}

/// Translates `manifest_dir` and replaces the routes in `envoy_dir`.
pub fn apply_routes(manifest_dir: &Path, envoy_dir: &Path, plan: &PlanOptions) -> Result<()> {
    let problem = |err: switchyard_local::Error| Error::LocalFile {
        path: manifest_dir.display().to_string(),
        message: format!("translating the manifests for Envoy: {err}"),
    };
    let stack = LocalStack::load(manifest_dir, plan).map_err(problem)?;
    ConfigDir::create(envoy_dir)
        .and_then(|dir| dir.write_routes(&stack.config))
        .map_err(problem)
}

/// One pass over every rollout. Returns whether a route file changed.
pub async fn pass(
    options: &LocalOptions,
    analysis: &mut LocalAnalysis,
    now: Timestamp,
) -> Result<bool> {
    let mut changed = false;
    for local in load_rollouts(&options.manifest_dir)? {
        let name = local.rollout.metadata.name.clone().unwrap_or_default();
        let route_file = local
            .rollout
            .spec
            .target
            .route
            .as_ref()
            .and_then(|route| super::route_path(&options.manifest_dir, &route.name).ok());
        let before = route_file.as_ref().and_then(|p| std::fs::read(p).ok());
        let guard = options.status_lock.lock().await;
        let reconciled = reconcile_once(
            &options.manifest_dir,
            &options.state_dir,
            &local.rollout,
            now,
            analysis,
        )
        .await;
        drop(guard);
        if let Err(err) = reconciled {
            warn!(rollout = %name, error = %err, "reconcile failed");
            continue;
        }
        let after = route_file.as_ref().and_then(|p| std::fs::read(p).ok());
        changed |= before != after;
    }
    if changed && let Some(envoy_dir) = &options.envoy_dir {
        apply_routes(&options.manifest_dir, envoy_dir, &options.plan)?;
        info!(envoy = %envoy_dir.display(), "routes applied to Envoy");
    }
    Ok(changed)
}

/// Runs passes until `shutdown` is cancelled. A failed pass is logged and
/// retried on the next tick: the files may be mid-edit by a person.
pub async fn run(options: LocalOptions, shutdown: CancellationToken) {
    info!(dir = %options.manifest_dir.display(), state = %options.state_dir.display(), "local mode");
    let mut analysis = local_analysis(&options);
    loop {
        if let Err(err) = pass(&options, &mut analysis, Timestamp::now()).await {
            warn!(error = %err, "local pass failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(options.interval) => {}
        }
    }
}
