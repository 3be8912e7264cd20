//! The I/O shell around [`crate::plan`]: kube-rs `Controller`, one `reconcile`
//! per InferenceRollout.
//!
//! `reconcile` reads (route, pool readiness, other rollouts, the analysis
//! window's measurements), calls the pure planner, then writes — the route's
//! weights with a guarded JSON Patch, the status with server-side apply under
//! its own field manager (so the admin API's `status.intent` is never
//! overwritten), and one Kubernetes event per planned event.
//!
//! No finalizer: deleting a rollout leaves the route's weights where they are,
//! which is what the user last saw; there is nothing of ours to clean up.

pub mod observe;
mod rewrite;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use switchyard_api::rollout::SplitMode;
use switchyard_api::{HttpRoute, InferenceModelRewrite, InferenceRollout};
use tracing::{info, instrument, warn};

use crate::epp::cluster::ClusterAnalysis;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::plan::{self, Observations};
use crate::prometheus::AllowedAddresses;

/// The field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "inference-rollout-controller";

/// Each rollout's EPP scrape history, by (namespace, name). The outer lock is
/// held only to find the entry; kube's controller never reconciles one object
/// twice at once, so a rollout's own lock is never waited on.
pub type EppHistories =
    tokio::sync::Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<ClusterAnalysis>>>>;

/// Everything `reconcile` needs besides the object.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes events.
    pub recorder: Recorder,
    /// Every InferenceRollout, to find two on one route rule.
    pub rollouts: Store<InferenceRollout>,
    /// The clock; tests pin it.
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// The controller's own metrics.
    pub metrics: Metrics,
    /// The EPP source's scrape history per rollout (lost on restart: the
    /// first window after it is `NoData`, the next one is measured).
    pub epp: EppHistories,
    /// The Prometheus servers rollouts may name (`--prometheus-allowed-addresses`).
    pub prometheus_allowed: AllowedAddresses,
}

impl Context {
    /// A context with the system clock.
    pub fn new(
        client: Client,
        rollouts: Store<InferenceRollout>,
        metrics: Metrics,
        prometheus_allowed: AllowedAddresses,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            rollouts,
            clock: Arc::new(Timestamp::now),
            metrics,
            epp: EppHistories::default(),
            prometheus_allowed,
        }
    }
}

/// Plans and applies one rollout.
#[instrument(skip_all, fields(rollout = %rollout.name_any(), namespace = rollout.namespace().unwrap_or_default()))]
pub async fn reconcile(rollout: Arc<InferenceRollout>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = rollout.namespace().unwrap_or_default();
    let now = (ctx.clock)();
    let status = rollout.status.clone().unwrap_or_default();
    let spec = &rollout.spec;
    let model_split = spec
        .target
        .model_split
        .as_ref()
        .filter(|_| spec.target.mode == SplitMode::ModelSplit);
    let (route, rewrite, (canary_ready, stable_ready)) = match model_split {
        Some(split) => {
            let read = rewrite::read(&ctx.client, &namespace, split).await?;
            // Both arms are models in the rewrite's one pool: its ready
            // endpoints are each arm's.
            let ready = match read.pool() {
                Some(pool) => {
                    let assumed =
                        u32::try_from(spec.safety.min_canary_ready_endpoints.max(1)).unwrap_or(1);
                    let n =
                        observe::ready_endpoints(&ctx.client, &namespace, &pool, assumed).await?;
                    (n, n)
                }
                None => (0, 0),
            };
            let route = observe::RouteRead {
                observation: read.observation.clone(),
                found: None,
            };
            (route, read.found, ready)
        }
        None => (
            observe::route(&ctx.client, &namespace, spec).await?,
            None,
            observe::readiness(&ctx.client, &namespace, spec).await?,
        ),
    };
    let epp = epp_history(&ctx, &namespace, &rollout.name_any()).await;
    let analysis = observe::analysis_on_cluster(
        &ctx.client,
        &ctx.prometheus_allowed,
        &namespace,
        spec,
        &status,
        now,
        &mut *epp.lock().await,
    )
    .await;
    let others = ctx.rollouts.state();
    let observations = Observations {
        now,
        generation: rollout.metadata.generation,
        route: route.observation.clone(),
        canary_ready,
        stable_ready,
        analysis,
        conflict_with: crate::conflict::conflict_with(&rollout, others.iter().map(Arc::as_ref)),
    };
    let decision = plan::plan(spec, &status, &observations);

    // The status goes first: it records the weights we are about to write
    // (`weights.desired`), so if the route write lands and we die, or the
    // status write would have failed after it, the next reconcile finds the
    // route carrying `desired` and records it as our write instead of
    // reading it as someone else's (drift, which pauses the rollout).
    if write::strip_intent(&decision.status) != write::strip_intent(&status) {
        write::status(&ctx.client, &rollout, &decision.status).await?;
    }
    let mut events = decision.events.clone();
    let written = match (decision.write, &route.found, &rewrite, model_split) {
        (Some(weights), Some(found), _, _) => {
            Some(write::route_weights(&ctx.client, &namespace, spec, found, weights).await)
        }
        (Some(weights), None, Some(found), Some(split)) => {
            Some(rewrite::write_weights(&ctx.client, &namespace, split, found, weights).await)
        }
        _ => None,
    };
    if let Some(written) = written {
        match written {
            Ok(()) => ctx.metrics.weight_write("ok"),
            Err(Error::Conflict { route }) => {
                ctx.metrics.weight_write("conflict");
                events.push(plan::PlannedEvent {
                    reason: "WeightWriteConflict",
                    warning: true,
                    message: format!(
                        "HTTPRoute {route:?} changed between read and write; re-reading it"
                    ),
                });
            }
            Err(Error::RewriteConflict { rewrite }) => {
                ctx.metrics.weight_write("conflict");
                events.push(plan::PlannedEvent {
                    reason: "WeightWriteConflict",
                    warning: true,
                    message: format!(
                        "InferenceModelRewrite {rewrite:?} changed between read and write; re-reading it"
                    ),
                });
            }
            Err(err) => {
                ctx.metrics.weight_write("error");
                return Err(err);
            }
        }
    }
    for event in &events {
        info!(reason = event.reason, message = %event.message, "rollout event");
        if let Err(err) = write::event(&ctx.recorder, &rollout, event).await {
            // An event is worth a log line, not a failed reconcile.
            warn!(error = %err, reason = event.reason, "cannot publish event");
        }
    }
    if let Some(weights) = decision
        .status
        .weights
        .as_ref()
        .and_then(|w| w.applied.as_ref())
    {
        ctx.metrics
            .canary_weight(&namespace, &rollout.name_any(), weights.canary);
    }
    Ok(Action::requeue(decision.requeue_after))
}

/// The rollout's EPP scrape history, dropping that of rollouts gone from the
/// watch cache.
async fn epp_history(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Arc<tokio::sync::Mutex<ClusterAnalysis>> {
    let key = (namespace.to_owned(), name.to_owned());
    let mut histories = ctx.epp.lock().await;
    let live = ctx.rollouts.state();
    histories.retain(|(namespace, name), _| {
        (namespace, name) == (&key.0, &key.1)
            || live.iter().any(|r| {
                r.metadata.namespace.as_deref() == Some(namespace.as_str()) && r.name_any() == *name
            })
    });
    histories.entry(key).or_default().clone()
}

/// Retries a failed reconcile after a pause that grows with nothing: the
/// planner is idempotent, so a fixed short delay is enough.
pub fn error_policy(rollout: Arc<InferenceRollout>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(rollout = %rollout.name_any(), error = %error, kind = error.kind(), "reconcile failed");
    ctx.metrics.reconcile_error(error.kind());
    Action::requeue(Duration::from_secs(10))
}

/// Runs the controller until `shutdown` resolves: watches InferenceRollouts and
/// the HTTPRoutes and InferenceModelRewrites they target.
pub async fn run(
    client: Client,
    metrics: Metrics,
    prometheus_allowed: AllowedAddresses,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let rollouts: Api<InferenceRollout> = Api::all(client.clone());
    let routes: Api<HttpRoute> = Api::all(client.clone());
    let controller = Controller::new(rollouts, watcher::Config::default());
    let store = controller.store();
    let mapper_store = store.clone();
    let rewrite_store = store.clone();
    let rewrites: Api<InferenceModelRewrite> = Api::all(client.clone());
    let ctx = Arc::new(Context::new(
        client,
        store,
        metrics.clone(),
        prometheus_allowed,
    ));
    controller
        .watches(
            routes,
            watcher::Config::default(),
            move |route: HttpRoute| {
                let namespace = route.namespace();
                let name = route.name_any();
                mapper_store
                    .state()
                    .into_iter()
                    .filter(move |r| {
                        r.namespace() == namespace
                            && r.spec.target.route.as_ref().is_some_and(|t| t.name == name)
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
            },
        )
        .watches(
            rewrites,
            watcher::Config::default(),
            move |rewrite: InferenceModelRewrite| {
                let namespace = rewrite.namespace();
                let name = rewrite.name_any();
                rewrite_store
                    .state()
                    .into_iter()
                    .filter(move |r| {
                        r.namespace() == namespace
                            && r.spec.target.mode == SplitMode::ModelSplit
                            && r.spec
                                .target
                                .model_split
                                .as_ref()
                                .is_some_and(|t| t.rewrite_ref == name)
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            let metrics = metrics.clone();
            async move {
                metrics.reconcile(result.is_ok());
            }
        })
        .await;
}

#[cfg(test)]
pub(crate) mod tests;
