//! The EPP source: each arm's endpoint picker is scraped directly (its
//! `/metrics` page), no Prometheus needed.
//!
//! In PoolSplit mode every pool has its own EPP, so the arms are measured
//! apart. The scraper keeps a short history of each arm's totals (one entry
//! per scrape, at most every `scrapeInterval`, plus one at every analysis).
//! A window is the increase between the last scrape at or before its start
//! and a scrape at its end; counter resets (an EPP restart) are handled like
//! PromQL's `increase()`, and quantiles come from the histogram buckets'
//! increase ([`window`]).
//!
//! What the EPP counts (see epp/src/metrics):
//! - requests: scheduled (`inference_objective_request_total`) plus those it
//!   answered itself (`inference_objective_request_error_total{error_code}`);
//! - ErrorRate: model server responses by class
//!   (`switchyard_epp_model_server_responses_total{status_class}`) plus the
//!   EPP's own `Internal` (5xx) and `BadRequest` (4xx); 429 is never an error;
//! - ShedRate: the EPP's `ResourceExhausted` and `ServiceUnavailable` plus the
//!   model servers' 429;
//! - TTFT and InterTokenLatency: `inference_objective_request_{ttft,tpot}_seconds`
//!   (streamed responses only);
//! - OutputTokenThroughput: `inference_objective_output_tokens_sum` per second
//!   ÷ `inference_pool_ready_pods`.
//!
//! Blind spot: failures the EPP never sees (a gateway 5xx, a reset before the
//! response headers) are not counted.

pub mod cluster;
pub mod page;
pub mod window;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::rollout::{AnalysisSpec, MetricVerdict};

use crate::error::{Error, Result};
use crate::judge::judge_all;
use crate::plan::Window;
use page::{ArmFilter, Totals};

/// A `/metrics` page larger than this is refused (the EPP's is a few kB per
/// model).
const MAX_PAGE_BYTES: usize = 8 << 20;

/// Scrapes kept per arm; at one per second this is over an hour.
const MAX_HISTORY: usize = 4096;

/// One arm's EPP and which of its series belong to the arm.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArmTarget {
    /// The EPP's metrics URL, e.g. `http://127.0.0.1:9090/metrics`.
    pub url: String,
    /// The pool's name (for its ready endpoints).
    pub pool: Option<String>,
    /// Only this `target_model_name` (ModelSplit: both arms share one EPP).
    pub target_model: Option<String>,
}

impl ArmTarget {
    fn filter(&self) -> ArmFilter<'_> {
        ArmFilter {
            pool: self.pool.as_deref(),
            target_model: self.target_model.as_deref(),
        }
    }
}

/// The scraper and each arm's history of totals.
#[derive(Debug)]
pub struct EppScraper {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    history: HashMap<ArmTarget, VecDeque<(i64, Totals)>>,
}

impl EppScraper {
    /// A scraper giving each page `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            history: HashMap::new(),
        }
    }

    /// Forgets the history of every arm but `arms` (a rollout whose spec
    /// changed must not keep its old pickers' pages forever).
    pub fn retain_arms(&mut self, arms: &[&ArmTarget]) {
        self.history.retain(|arm, _| arms.contains(&arm));
    }

    /// Scrapes `arm` unless its last scrape is less than `interval_ms` old.
    pub async fn scrape_if_due(
        &mut self,
        arm: &ArmTarget,
        now: Timestamp,
        interval_ms: i64,
    ) -> Result<()> {
        let last = self
            .history
            .get(arm)
            .and_then(|h| h.back())
            .map(|(at, _)| *at);
        if last.is_some_and(|at| now.as_millisecond() - at < interval_ms) {
            return Ok(());
        }
        self.scrape(arm, now).await
    }

    /// Scrapes `arm` now and keeps its totals as of `now`.
    pub async fn scrape(&mut self, arm: &ArmTarget, now: Timestamp) -> Result<()> {
        let text = self.fetch(&arm.url).await?;
        let totals = page::totals(&text, arm.filter());
        let at = now.as_millisecond();
        let history = self.history.entry(arm.clone()).or_default();
        // A clock that went back must not leave the history out of order.
        while history.back().is_some_and(|(last, _)| *last > at) {
            history.pop_back();
        }
        history.push_back((at, totals));
        while history.len() > MAX_HISTORY {
            history.pop_front();
        }
        Ok(())
    }

    /// Measures and judges `window` for both arms: a scrape at its end,
    /// compared with the last one at or before its start (or the first one
    /// inside it, when the controller started after the window did).
    pub async fn analyse(
        &mut self,
        analysis: &AnalysisSpec,
        canary: &ArmTarget,
        stable: &ArmTarget,
        window: &Window,
    ) -> Vec<MetricVerdict> {
        let arms = async {
            let canary = self.arm_window(canary, window).await?;
            let stable = self.arm_window(stable, window).await?;
            Ok::<_, Error>((canary, stable))
        };
        match arms.await {
            Ok((canary, stable)) => {
                judge_all(analysis, |check| window::measure(check, &canary, &stable))
            }
            Err(err) => {
                let message = err.to_string();
                judge_all(analysis, |_| Err::<crate::judge::Measurement, _>(&message))
            }
        }
    }

    async fn arm_window(&mut self, arm: &ArmTarget, window: &Window) -> Result<window::ArmWindow> {
        self.scrape(arm, window.end).await?;
        let start = window.start.as_millisecond();
        let end = window.end.as_millisecond();
        let history = self.history.get(arm).map(|h| h.as_slices());
        let entries = history
            .into_iter()
            .flat_map(|(a, b)| a.iter().chain(b.iter()));
        let mut baseline = None;
        for entry in entries {
            if entry.0 <= start || (baseline.is_none() && entry.0 < end) {
                baseline = Some(entry);
            } else {
                break;
            }
        }
        let latest = self.history.get(arm).and_then(|h| h.back());
        match (baseline, latest) {
            (Some((from, earlier)), Some((to, later))) => {
                Ok(window::window(earlier, later, (to - from) as f64 / 1000.0))
            }
            _ => Err(Error::Epp {
                url: arm.url.clone(),
                message:
                    "no scrape from before the window's end yet; the next window will have one"
                        .into(),
            }),
        }
    }

    async fn fetch(&self, url: &str) -> Result<String> {
        let fail = |message: String| Error::Epp {
            url: url.to_owned(),
            message,
        };
        let uri: Uri = url
            .parse()
            .map_err(|err| fail(format!("not a valid URL: {err}")))?;
        let request = Request::get(uri)
            .body(Empty::new())
            .map_err(|err| fail(format!("cannot build the request: {err}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|err| fail(format!("cannot reach the EPP ({err}); is it running?")))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_PAGE_BYTES)
                .collect()
                .await
                .map_err(|err| fail(format!("reading the page failed: {err}")))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {:?}", self.timeout)))??;
        if status != StatusCode::OK {
            return Err(fail(format!("answered HTTP {status}, not a metrics page")));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| fail("the page is not UTF-8 text".into()))
    }
}

#[cfg(test)]
pub(crate) mod tests;
