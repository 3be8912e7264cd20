//! Local mode's analysis: each pool's endpoint picker, as the local stack
//! planned it, scraped through the EPP source; or the rollout's Prometheus
//! when it names one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::{BackendTarget, InferenceRolloutStatus, parse_duration_ms};
use switchyard_local::plan::LocalPlan;
use tracing::warn;

use crate::controller::observe;
use crate::epp::{ArmTarget, EppScraper};
use crate::plan::{WindowResult, analysis_window};
use crate::prometheus::AllowedAddresses;

/// The EPP scrape interval when the rollout sets none (the CRD's default).
const DEFAULT_SCRAPE_INTERVAL_MS: u64 = 15_000;

/// Scrapes each pool's picker and judges analysis windows.
#[derive(Debug)]
pub struct LocalAnalysis {
    scraper: EppScraper,
    /// Each pool's picker metrics address.
    pickers: BTreeMap<String, SocketAddr>,
}

impl LocalAnalysis {
    /// Analysis over the pickers at `pickers` (pool name → metrics address).
    pub fn new(pickers: BTreeMap<String, SocketAddr>) -> Self {
        Self {
            scraper: EppScraper::new(Duration::from_secs(5)),
            pickers,
        }
    }

    /// Analysis over the pickers of a planned local stack.
    pub fn from_plan(plan: &LocalPlan) -> Self {
        Self::new(
            plan.pools
                .iter()
                .map(|pool| (pool.pool.name.clone(), pool.picker.metrics))
                .collect(),
        )
    }

    fn arm(&self, backend: &BackendTarget) -> Option<ArmTarget> {
        let address = self.pickers.get(&backend.name)?;
        Some(ArmTarget {
            url: format!("http://{address}/metrics"),
            pool: Some(backend.name.clone()),
            target_model: None,
        })
    }

    /// Scrapes both arms when due (so a window has a scrape from before its
    /// start), then measures the window the planner is owed, if any.
    pub async fn observe(
        &mut self,
        spec: &InferenceRolloutSpec,
        status: &InferenceRolloutStatus,
        now: Timestamp,
    ) -> Option<WindowResult> {
        if spec.analysis.source.prometheus.is_some() {
            // Local mode reads one's own manifests: no tenant to fence off.
            return observe::analysis(spec, status, now, &AllowedAddresses::any()).await;
        }
        let arms = match (&spec.target.canary, &spec.target.stable) {
            (Some(canary), Some(stable)) => Some((canary, stable)),
            _ => None,
        };
        let targets = arms.map(|(canary, stable)| (self.arm(canary), self.arm(stable)));
        let interval = spec
            .analysis
            .source
            .epp
            .as_ref()
            .and_then(|epp| parse_duration_ms(&epp.scrape_interval))
            .unwrap_or(DEFAULT_SCRAPE_INTERVAL_MS);
        let interval = i64::try_from(interval).unwrap_or(i64::MAX);
        if !spec.analysis.metrics.is_empty()
            && let Some((Some(canary), Some(stable))) = &targets
        {
            for arm in [canary, stable] {
                if let Err(err) = self.scraper.scrape_if_due(arm, now, interval).await {
                    warn!(error = %err, "EPP scrape failed");
                }
            }
        }
        let window = analysis_window(spec, status, now)?;
        let no_data = |message: String| crate::judge::no_data(&spec.analysis, &message);
        let verdicts = match (arms, targets) {
            _ if spec.analysis.metrics.is_empty() => Vec::new(),
            (Some(_), Some((Some(canary), Some(stable)))) => {
                self.scraper
                    .analyse(&spec.analysis, &canary, &stable, &window)
                    .await
            }
            (Some((canary, stable)), _) => no_data(format!(
                "the local stack runs no picker for {} or {}; list both pools in local-endpoints.yaml",
                canary.name, stable.name
            )),
            _ => no_data("spec.target needs stable and canary".into()),
        };
        Some(WindowResult {
            end: window.end,
            verdicts,
        })
    }
}
