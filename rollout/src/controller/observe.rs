//! Reads for one reconcile: the route, the pools' ready endpoints, and the
//! analysis window's measurements.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};
use switchyard_api::reference::{INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND};
use switchyard_api::rollout::{BackendTarget, InferenceRolloutStatus, SplitMode};
use switchyard_api::{HttpRoute, InferencePool, InferenceRolloutSpec};
use tracing::debug;

use crate::epp::cluster::ClusterAnalysis;
use crate::error::{Error, Result};
use crate::judge::judge_all;
use crate::plan::{RouteObservation, WindowResult, analysis_window};
use crate::prometheus::queries::Arms;
use crate::prometheus::{AllowedAddresses, Prometheus};
use crate::route::{RouteView, locate};

/// The route as read, plus what the patch needs.
pub struct RouteRead {
    /// What the planner sees.
    pub observation: RouteObservation,
    /// The route and where the backends are, when found.
    pub found: Option<(HttpRoute, RouteView)>,
}

fn kube_error(action: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { action, source }
}

/// Reads the target route and finds the two backends in it.
pub async fn route(
    client: &Client,
    namespace: &str,
    spec: &InferenceRolloutSpec,
) -> Result<RouteRead> {
    let missing = |message: String| RouteRead {
        observation: RouteObservation::Missing(message),
        found: None,
    };
    let (Some(target), Some(stable), Some(canary)) =
        (&spec.target.route, &spec.target.stable, &spec.target.canary)
    else {
        return Ok(missing("spec.target needs route, stable and canary".into()));
    };
    let api: Api<HttpRoute> = Api::namespaced(client.clone(), namespace);
    let Some(route) = api.get_opt(&target.name).await.map_err(kube_error(format!(
        "get HTTPRoute {namespace}/{}",
        target.name
    )))?
    else {
        return Ok(missing(format!(
            "HTTPRoute {namespace}/{} not found",
            target.name
        )));
    };
    Ok(match locate(&route, target, stable, canary) {
        Ok(view) => RouteRead {
            observation: RouteObservation::Found(view.clone()),
            found: Some((route, view)),
        },
        Err(err) => missing(err.to_string()),
    })
}

/// Ready endpoints of (canary, stable).
pub async fn readiness(
    client: &Client,
    namespace: &str,
    spec: &InferenceRolloutSpec,
) -> Result<(u32, u32)> {
    let assumed = u32::try_from(spec.safety.min_canary_ready_endpoints.max(1)).unwrap_or(1);
    let count = async |backend: &Option<BackendTarget>| -> Result<u32> {
        match backend {
            Some(backend) => ready_endpoints(client, namespace, backend, assumed).await,
            None => Ok(0),
        }
    };
    let canary = count(&spec.target.canary).await?;
    let stable = count(&spec.target.stable).await?;
    Ok((canary, stable))
}

/// Ready endpoints of one backend: ready, not terminating pods matching an
/// InferencePool's selector, times its target ports. Other kinds cannot be
/// counted here and are assumed to have `assumed` (the minimum).
pub(crate) async fn ready_endpoints(
    client: &Client,
    namespace: &str,
    backend: &BackendTarget,
    assumed: u32,
) -> Result<u32> {
    if backend.group != INFERENCE_POOL_GROUP || backend.kind != INFERENCE_POOL_KIND {
        debug!(kind = %backend.kind, name = %backend.name, "readiness unknown for this kind; assuming the minimum");
        return Ok(assumed);
    }
    let pools: Api<InferencePool> = Api::namespaced(client.clone(), namespace);
    let Some(pool) = pools
        .get_opt(&backend.name)
        .await
        .map_err(kube_error(format!(
            "get InferencePool {namespace}/{}",
            backend.name
        )))?
    else {
        return Ok(0);
    };
    let selector: Vec<String> = pool
        .spec
        .selector
        .match_labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector.join(",")))
        .await
        .map_err(kube_error(format!(
            "list pods of InferencePool {namespace}/{}",
            backend.name
        )))?;
    let ready = list.items.iter().filter(|pod| is_ready(pod)).count();
    let ports = pool.spec.target_ports.len().max(1);
    Ok(u32::try_from(ready * ports).unwrap_or(u32::MAX))
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|status| {
            status.pod_ip.is_some()
                && status
                    .conditions
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Measures and judges the analysis window, when one is due, from the
/// rollout's source: its Prometheus, or each arm's EPP (`epp`, the rollout's
/// scrape history).
pub async fn analysis_on_cluster(
    client: &Client,
    prometheus_allowed: &AllowedAddresses,
    namespace: &str,
    spec: &InferenceRolloutSpec,
    status: &InferenceRolloutStatus,
    now: Timestamp,
    epp: &mut ClusterAnalysis,
) -> Option<WindowResult> {
    if spec.analysis.source.prometheus.is_some() {
        return analysis(spec, status, now, prometheus_allowed).await;
    }
    epp.observe(client, namespace, spec, status, now).await
}

/// Measures and judges the analysis window, when one is due, with the
/// rollout's Prometheus, if `allowed` lists it.
pub async fn analysis(
    spec: &InferenceRolloutSpec,
    status: &InferenceRolloutStatus,
    now: Timestamp,
    allowed: &AllowedAddresses,
) -> Option<WindowResult> {
    let window = analysis_window(spec, status, now)?;
    let no_data = |message: &str| crate::judge::no_data(&spec.analysis, message);
    let verdicts = match (&spec.analysis.source.prometheus, arm_names(spec)) {
        _ if spec.analysis.metrics.is_empty() => Vec::new(),
        (Some(source), Some((canary, stable))) => match Prometheus::new(source, allowed) {
            Err(err) => no_data(&err.to_string()),
            Ok(client) => {
                let arms = Arms { canary, stable };
                let seconds = (window.end.as_millisecond() - window.start.as_millisecond()) / 1000;
                let seconds = u64::try_from(seconds).unwrap_or(1).max(1);
                let mut measured = Vec::with_capacity(spec.analysis.metrics.len());
                for check in &spec.analysis.metrics {
                    measured.push(client.measure(check, &arms, seconds, window.end).await);
                }
                let mut measured = measured.into_iter();
                judge_all(&spec.analysis, |_| {
                    measured.next().unwrap_or_else(|| {
                        Err(Error::InvalidSpec("metric without a measurement".into()))
                    })
                })
            }
        },
        (Some(_), None) => no_data("spec.target needs stable and canary"),
        // Callers send the EPP source to `epp::cluster` or local mode.
        (None, _) => no_data("spec.analysis.source.prometheus is not set"),
    };
    Some(WindowResult {
        end: window.end,
        verdicts,
    })
}

/// The names `{{arm}}` stands for: the two backends (PoolSplit) or the two
/// `modelRewrite` targets (ModelSplit, whose arms share one pool).
fn arm_names(spec: &InferenceRolloutSpec) -> Option<(&str, &str)> {
    match (spec.target.mode, &spec.target.model_split) {
        (SplitMode::ModelSplit, Some(split)) => Some((&split.canary, &split.stable)),
        _ => match (&spec.target.canary, &spec.target.stable) {
            (Some(canary), Some(stable)) => Some((&canary.name, &stable.name)),
            _ => None,
        },
    }
}
