//! The EPP source on a cluster: each arm's InferencePool names its endpoint
//! picker in `spec.endpointPickerRef`, and the picker's `/metrics` page is
//! scraped through that Service's DNS name.
//!
//! `endpointPickerRef.port` is the picker's gRPC (ext_proc) port, not its
//! metrics port (`--metrics-port`, 9090 by default), so the metrics port is
//! found on the Service, in this order:
//! 1. the InferencePool annotation [`METRICS_PORT_ANNOTATION`]: a Service
//!    port number, or the name of one of the Service's ports;
//! 2. the Service port named `http-metrics` (the inferencepool chart's name)
//!    or `metrics`.
//!
//! The scrape history lives in the controller's memory, one [`ClusterAnalysis`]
//! per rollout. A controller restart loses it: the first window after a
//! restart has no scrape from before its start, is judged `NoData` with that
//! reason, and the next window is measured normally — a restart simply starts
//! a new window.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject};
use kube::{Api, Client};
use serde_json::Value;
use switchyard_api::pool::EndpointPickerRef;
use switchyard_api::reference::{INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND};
use switchyard_api::rollout::{BackendTarget, InferenceRolloutStatus, parse_duration_ms};
use switchyard_api::{InferencePool, InferenceRolloutSpec};
use tracing::warn;

use super::{ArmTarget, EppScraper};
use crate::plan::{WindowResult, analysis_window};

/// InferencePool annotation choosing its picker's metrics port on the
/// picker's Service: a port number or a port name.
pub const METRICS_PORT_ANNOTATION: &str = "rollout.switchyard.dev/epp-metrics-port";

/// Service port names taken as the picker's metrics port, in order of
/// preference (`http-metrics` is what the inferencepool chart names it).
pub const METRICS_PORT_NAMES: [&str; 2] = ["http-metrics", "metrics"];

/// The EPP scrape interval when the rollout sets none (the CRD's default).
const DEFAULT_SCRAPE_INTERVAL_MS: u64 = 15_000;

/// How long one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The picker of one pool as `spec.endpointPickerRef` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickerRef {
    /// The picker Service's name (in the pool's namespace).
    pub service: String,
    /// The metrics port asked for by [`METRICS_PORT_ANNOTATION`], if any.
    pub metrics_port: Option<String>,
}

/// Reads the picker reference off an InferencePool as the apiserver returned
/// it (kept as JSON so that a pool without `endpointPickerRef` gets a message
/// saying so rather than a decoding error).
pub fn picker_ref(namespace: &str, pool: &str, object: &Value) -> Result<PickerRef, String> {
    let Some(reference) = object.pointer("/spec/endpointPickerRef") else {
        return Err(format!(
            "InferencePool {namespace}/{pool} has no spec.endpointPickerRef; \
             the EPP source scrapes the picker it names, so set it (or use spec.analysis.source.prometheus)"
        ));
    };
    let reference: EndpointPickerRef =
        serde_json::from_value(reference.clone()).map_err(|err| {
            format!(
                "InferencePool {namespace}/{pool}: spec.endpointPickerRef cannot be read: {err}"
            )
        })?;
    if !reference.group.is_empty() || reference.kind != "Service" {
        return Err(format!(
            "InferencePool {namespace}/{pool}: endpointPickerRef is a {kind} (group {group:?}); \
             the EPP source can only scrape a picker behind a core Service",
            kind = reference.kind,
            group = reference.group,
        ));
    }
    let metrics_port = object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(METRICS_PORT_ANNOTATION))
        .and_then(Value::as_str)
        .map(|value| value.trim().to_owned());
    Ok(PickerRef {
        service: reference.name,
        metrics_port,
    })
}

/// The Service port serving the picker's metrics: the one `wanted` names (a
/// number or a port name), else the first named like [`METRICS_PORT_NAMES`].
///
/// An `ExternalName` Service is refused: its DNS name points wherever its
/// author likes, so the controller would scrape (from its own network
/// position) a host the namespace user chose.
pub fn metrics_port(service: &Service, wanted: Option<&str>) -> Result<i32, String> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
    if service.spec.as_ref().and_then(|spec| spec.type_.as_deref()) == Some("ExternalName") {
        return Err(format!(
            "Service {namespace}/{name} is of type ExternalName; the EPP source scrapes only              pickers in the cluster: point the InferencePool's endpointPickerRef at the EPP's              ClusterIP Service"
        ));
    }
    let ports = service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_deref())
        .unwrap_or_default();
    let named = |wanted: &str| {
        ports
            .iter()
            .find(|port| port.name.as_deref() == Some(wanted))
            .map(|port| port.port)
    };
    if let Some(wanted) = wanted {
        if let Ok(number) = wanted.parse::<i32>() {
            return if ports.iter().any(|port| port.port == number) {
                Ok(number)
            } else {
                Err(format!(
                    "Service {namespace}/{name} has no port {number}, which the InferencePool's \
                     {METRICS_PORT_ANNOTATION} annotation asks for; add it or fix the annotation"
                ))
            };
        }
        return named(wanted).ok_or_else(|| {
            format!(
                "Service {namespace}/{name} has no port named {wanted:?}, which the InferencePool's \
                 {METRICS_PORT_ANNOTATION} annotation asks for; add it or fix the annotation"
            )
        });
    }
    METRICS_PORT_NAMES
        .iter()
        .find_map(|wanted| named(wanted))
        .ok_or_else(|| {
            format!(
                "Service {namespace}/{name} has no port named http-metrics or metrics; add the EPP's \
                 metrics port (--metrics-port, 9090 by default) to it under one of these names, or \
                 annotate the InferencePool with {METRICS_PORT_ANNOTATION}: <port number or name>"
            )
        })
}

/// The picker's metrics page through its Service's cluster DNS name.
pub fn metrics_url(service: &str, namespace: &str, port: i32) -> String {
    format!("http://{service}.{namespace}.svc:{port}/metrics")
}

/// Finds the metrics page of one arm's picker: its InferencePool, then the
/// Service named by `endpointPickerRef`. `Err` says what to fix.
pub async fn arm_target(
    client: &Client,
    namespace: &str,
    backend: &BackendTarget,
) -> Result<ArmTarget, String> {
    if backend.group != INFERENCE_POOL_GROUP || backend.kind != INFERENCE_POOL_KIND {
        return Err(format!(
            "the EPP source measures InferencePool backends; {} {} is not one \
             (use spec.analysis.source.prometheus)",
            backend.kind, backend.name
        ));
    }
    let resource = ApiResource::erase::<InferencePool>(&());
    let pools: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let pool = pools
        .get_opt(&backend.name)
        .await
        .map_err(|err| {
            format!(
                "cannot get InferencePool {namespace}/{}: {err}",
                backend.name
            )
        })?
        .ok_or_else(|| format!("InferencePool {namespace}/{} not found", backend.name))?;
    let object = serde_json::to_value(&pool).map_err(|err| {
        format!(
            "InferencePool {namespace}/{} cannot be read: {err}",
            backend.name
        )
    })?;
    let picker = picker_ref(namespace, &backend.name, &object)?;
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = services
        .get_opt(&picker.service)
        .await
        .map_err(|err| format!("cannot get Service {namespace}/{}: {err}", picker.service))?
        .ok_or_else(|| {
            format!(
                "Service {namespace}/{} (the endpointPickerRef of InferencePool {namespace}/{}) not found",
                picker.service, backend.name
            )
        })?;
    let port = metrics_port(&service, picker.metrics_port.as_deref())?;
    Ok(ArmTarget {
        url: metrics_url(&picker.service, namespace, port),
        pool: Some(backend.name.clone()),
        target_model: None,
    })
}

/// One rollout's EPP analysis on a cluster: its scrape history.
#[derive(Debug)]
pub struct ClusterAnalysis {
    scraper: EppScraper,
}

impl Default for ClusterAnalysis {
    fn default() -> Self {
        Self {
            scraper: EppScraper::new(SCRAPE_TIMEOUT),
        }
    }
}

impl ClusterAnalysis {
    /// Finds both arms' pickers, scrapes them when due, then measures the
    /// window the planner is owed, if any. Does nothing (no API call) for a
    /// rollout without metrics.
    pub async fn observe(
        &mut self,
        client: &Client,
        namespace: &str,
        spec: &InferenceRolloutSpec,
        status: &InferenceRolloutStatus,
        now: Timestamp,
    ) -> Option<WindowResult> {
        let targets = match (&spec.target.canary, &spec.target.stable) {
            _ if spec.analysis.metrics.is_empty() => {
                Err("spec.analysis.metrics is empty".to_owned())
            }
            (Some(canary), Some(stable)) => {
                match (
                    arm_target(client, namespace, canary).await,
                    arm_target(client, namespace, stable).await,
                ) {
                    (Ok(canary), Ok(stable)) => Ok((canary, stable)),
                    // Both reasons at once, so both can be fixed in one go.
                    (Err(canary), Err(stable)) => Err(format!("{canary}; {stable}")),
                    (Err(err), _) | (_, Err(err)) => Err(err),
                }
            }
            _ => Err("spec.target needs stable and canary".to_owned()),
        };
        self.observe_arms(spec, status, now, targets).await
    }

    /// [`Self::observe`] once the arms are found (or why they are not).
    pub async fn observe_arms(
        &mut self,
        spec: &InferenceRolloutSpec,
        status: &InferenceRolloutStatus,
        now: Timestamp,
        targets: Result<(ArmTarget, ArmTarget), String>,
    ) -> Option<WindowResult> {
        if let Ok((canary, stable)) = &targets {
            // History of arms the spec no longer names is of no use.
            self.scraper.retain_arms(&[canary, stable]);
            let interval = spec
                .analysis
                .source
                .epp
                .as_ref()
                .and_then(|epp| parse_duration_ms(&epp.scrape_interval))
                .unwrap_or(DEFAULT_SCRAPE_INTERVAL_MS);
            let interval = i64::try_from(interval).unwrap_or(i64::MAX);
            for arm in [canary, stable] {
                if let Err(err) = self.scraper.scrape_if_due(arm, now, interval).await {
                    warn!(error = %err, "EPP scrape failed");
                }
            }
        }
        let window = analysis_window(spec, status, now)?;
        let verdicts = match targets {
            _ if spec.analysis.metrics.is_empty() => Vec::new(),
            Ok((canary, stable)) => {
                self.scraper
                    .analyse(&spec.analysis, &canary, &stable, &window)
                    .await
            }
            Err(message) => crate::judge::no_data(&spec.analysis, &message),
        };
        Some(WindowResult {
            end: window.end,
            verdicts,
        })
    }
}

#[cfg(test)]
mod tests;
