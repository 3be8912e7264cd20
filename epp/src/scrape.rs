//! Metrics scraping and the datastore's single writer.
//!
//! [`run_datastore_owner`] is the only task that publishes snapshots. It owns
//! both kinds of write, so they are serialised without a lock:
//! - membership: each [`PoolState`] from the pool source becomes a snapshot
//!   through [`PoolSnapshot::apply`], after which the per-endpoint scrapers are
//!   started and stopped to match;
//! - metrics: scrapers send their results over a channel; the owner applies
//!   every result waiting at that moment with one
//!   [`PoolSnapshot::with_metrics`] and publishes once.
//!
//! Each endpoint has its own scraper task (see [`task`]): it requests
//! `http://<podIP>:<targetPort>/metrics` every `--refresh-metrics-interval`
//! (50 ms), gives up after 1 s, reads at most [`DEFAULT_MAX_BODY_BYTES`], and
//! parses the page in the task with the pod's engine config. A hung or huge
//! `/metrics` therefore costs only its own task: no other endpoint waits for
//! it. An endpoint whose scrapes fail keeps its last metrics, whose age
//! ([`crate::datastore::Endpoint::metrics_age`]) then grows: that is how
//! staleness is tracked.
//!
//! Upstream scrapes the endpoint's own port (`podIP:targetPort`) at `/metrics`
//! (docs/upstream.md#model-server-metrics-and-scraping, `metrics-data-source` defaults); so do we,
//! with the path
//! configurable.

pub mod engine;
pub mod metrics;
pub mod task;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::datastore::EndpointMetrics;
use crate::datastore::{Datastore, PoolSnapshot, Scrape};
use crate::error::{Error, Result};
use crate::source::{PoolSource, PoolState};
use engine::EngineRegistry;

pub use metrics::ScrapeMetrics;
use task::{Target, scrape_loop};

/// Upstream's `--refresh-metrics-interval` default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);
/// Upstream's per-poll timeout (`datalayer/collector.go`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The most bytes read from one `/metrics` response. A vLLM page is about
/// 20–60 KiB (more with many LoRA adapters or histograms); 4 MiB is two
/// orders of magnitude above that, yet bounds the memory a broken or hostile
/// server can make each scraper hold.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;
/// Upstream's `metrics-data-source` path.
pub const DEFAULT_PATH: &str = "/metrics";

/// How long the owner gathers results before publishing them together. With
/// many endpoints results arrive almost continuously; publishing each alone
/// would clone the snapshot thousands of times a second. This caps publishes
/// at 200 a second and adds at most 5 ms to a 50 ms scrape cycle.
const COALESCE: Duration = Duration::from_millis(5);
/// The most results the owner takes at once: bounds one snapshot rebuild.
const MAX_BATCH: usize = 1024;
/// Scrapers wait (back-pressure) when this many results are queued.
const REPORT_QUEUE: usize = 4096;

/// How endpoints are scraped.
#[derive(Clone, Debug)]
pub struct ScrapeConfig {
    /// Time between the starts of two scrapes of one endpoint.
    pub interval: Duration,
    /// Limit on one scrape, connection and whole body included.
    pub timeout: Duration,
    /// Limit on one response body.
    pub max_body_bytes: usize,
    /// The metrics path on each endpoint.
    pub path: String,
    /// Engine configs, chosen by the pod's engine-type label.
    pub engines: Arc<EngineRegistry>,
    /// Scrape counters for the metrics endpoint.
    pub metrics: Arc<ScrapeMetrics>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            path: DEFAULT_PATH.to_owned(),
            engines: Arc::default(),
            metrics: Arc::default(),
        }
    }
}

impl ScrapeConfig {
    /// Checks the settings a user can get wrong, so the EPP fails at start-up
    /// rather than silently never scraping.
    pub fn validate(&self) -> Result<()> {
        if self.interval.is_zero() {
            return Err(Error::Config(
                "--refresh-metrics-interval must be above zero, e.g. 50ms".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::Config(
                "the scrape timeout must be above zero, e.g. 1s".into(),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::Config(
                "the /metrics size cap must be above zero".into(),
            ));
        }
        let well_formed = self.path.starts_with('/')
            && format!("http://127.0.0.1:1{}", self.path)
                .parse::<http::Uri>()
                .is_ok();
        if !well_formed {
            return Err(Error::Config(format!(
                "metrics path `{}` is not a URI path; write it with a leading slash, e.g. /metrics",
                self.path
            )));
        }
        Ok(())
    }
}

/// One successful scrape, sent from a scraper to the owner.
#[derive(Debug)]
pub struct Report {
    /// The endpoint's name.
    pub endpoint: Arc<str>,
    /// The address scraped: a result for an address the endpoint no longer
    /// has (the pod was replaced under the same name) is dropped.
    pub address: SocketAddr,
    /// What was read.
    pub metrics: EndpointMetrics,
    /// When the scrape began.
    pub scraped_at: std::time::Instant,
    /// The endpoint's dispatch mark taken just before the request was sent.
    pub dispatch_mark: u64,
}

/// Keeps the datastore in step with the pool source and the scrapers until
/// `shutdown` resolves. Membership comes from `states` (the current value is
/// applied at once); when its sender goes away the last membership is kept
/// and scraped until shutdown.
///
/// `on_synced` is called once, when a state *sent* by the source (not the
/// channel's initial placeholder) is published: sources send only complete
/// states (the Kubernetes one after every initial list), so this is
/// upstream's "datastore synced" condition for the readiness health check.
pub async fn run_datastore_owner(
    datastore: Arc<Datastore>,
    mut states: watch::Receiver<Arc<PoolState>>,
    config: ScrapeConfig,
    on_synced: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) {
    let mut on_synced = Some(on_synced);
    let mut mark_synced = move || {
        if let Some(callback) = on_synced.take() {
            callback();
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let (reports_tx, mut reports) = mpsc::channel(REPORT_QUEUE);
    let mut scrapers = Scrapers::new(config, reports_tx);
    let mut membership_open = true;
    let (initial, from_source) = {
        let current = states.borrow_and_update();
        (Arc::clone(&current), current.has_changed())
    };
    let mut skipped = Vec::new();
    apply_state(&datastore, &initial, &mut scrapers, &mut skipped);
    if from_source {
        mark_synced();
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut publish_at: Option<Instant> = None;
    loop {
        let room = MAX_BATCH.saturating_sub(batch.len());
        tokio::select! {
            () = &mut shutdown => break,
            changed = states.changed(), if membership_open => {
                if changed.is_err() {
                    membership_open = false;
                    continue;
                }
                let state = Arc::clone(&states.borrow_and_update());
                apply_state(&datastore, &state, &mut scrapers, &mut skipped);
                mark_synced();
            }
            received = reports.recv_many(&mut batch, room), if room > 0 => {
                // The owner holds a sender, so the channel never closes.
                if received == 0 {
                    break;
                }
                publish_at.get_or_insert_with(|| Instant::now() + COALESCE);
            }
            () = sleep_until(publish_at) => {
                publish_metrics(&datastore, &batch);
                batch.clear();
                publish_at = None;
            }
        }
    }
    scrapers.stop_all();
}

/// Runs `source` and the datastore owner (with its scrapers) until `cancel`:
/// the whole data path of the pool in one call. Returns the source's error if
/// it gives up; the owner keeps the last pool until `cancel` in that case.
pub async fn run_pool<S: PoolSource>(
    source: S,
    datastore: Arc<Datastore>,
    config: ScrapeConfig,
    on_synced: impl FnOnce(),
    cancel: CancellationToken,
) -> Result<()> {
    let kind = source.kind();
    let (updates, states) = watch::channel(Arc::new(PoolState::default()));
    let runner = tokio::spawn(source.run(updates, cancel.clone().cancelled_owned()));
    run_datastore_owner(datastore, states, config, on_synced, cancel.cancelled()).await;
    match runner.await {
        Ok(result) => result,
        Err(join) => {
            tracing::error!(%join, source = kind, "pool source task failed");
            Ok(())
        }
    }
}

/// Publishes `state` and re-syncs the scrapers. Pods skipped for bad
/// metadata are logged when they start being skipped, not on every state
/// (`skipped` holds the messages of the last one).
fn apply_state(
    datastore: &Datastore,
    state: &PoolState,
    scrapers: &mut Scrapers,
    skipped: &mut Vec<String>,
) {
    let (snapshot, errors) = datastore.load().apply(state);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for message in &messages {
        if !skipped.contains(message) {
            tracing::warn!(err = %message, "skipping a pod");
        }
    }
    *skipped = messages;
    scrapers.sync(&snapshot);
    datastore.publish(snapshot);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn publish_metrics(datastore: &Datastore, reports: &[Report]) {
    let current = datastore.load();
    let scrapes: Vec<Scrape<'_>> = reports
        .iter()
        .filter(|r| {
            current
                .endpoints
                .binary_search_by(|e| (*e.name).cmp(&r.endpoint))
                .ok()
                .and_then(|i| current.endpoints.get(i))
                .is_some_and(|e| e.address == r.address)
        })
        .map(|r| Scrape {
            endpoint: &r.endpoint,
            metrics: r.metrics.clone(),
            scraped_at: r.scraped_at,
            dispatch_mark: r.dispatch_mark,
        })
        .collect();
    // Results only for endpoints that left: nothing to publish.
    if scrapes.is_empty() {
        return;
    }
    datastore.publish(current.with_metrics(scrapes));
}

/// The running scraper tasks, one per endpoint.
struct Scrapers {
    config: Arc<ScrapeConfig>,
    client: task::HttpClient,
    reports: mpsc::Sender<Report>,
    running: HashMap<Arc<str>, Running>,
}

/// A scraper task and what it was started for; dropping it stops the task.
struct Running {
    address: SocketAddr,
    engine: String,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scrapers {
    fn new(config: ScrapeConfig, reports: mpsc::Sender<Report>) -> Self {
        Self {
            config: Arc::new(config),
            client: task::http_client(),
            reports,
            running: HashMap::new(),
        }
    }

    /// Starts a scraper for each new endpoint (or one whose address or engine
    /// changed) and stops those of endpoints that left.
    fn sync(&mut self, snapshot: &PoolSnapshot) {
        let mut keep: HashMap<Arc<str>, Running> = HashMap::with_capacity(snapshot.endpoints.len());
        for endpoint in &snapshot.endpoints {
            let label = endpoint
                .labels
                .get(switchyard_api::protocol::ENGINE_TYPE_LABEL);
            let engine = self.config.engines.for_label(label.map(String::as_str));
            if let Some(running) = self.running.remove(&endpoint.name)
                && running.address == endpoint.address
                && running.engine == engine.name
            {
                keep.insert(Arc::clone(&endpoint.name), running);
                continue;
            }
            let target = Target::new(endpoint, engine.clone(), &self.config.path);
            let task = tokio::spawn(scrape_loop(
                target,
                self.client.clone(),
                Arc::clone(&self.config),
                self.reports.clone(),
            ));
            keep.insert(
                Arc::clone(&endpoint.name),
                Running {
                    address: endpoint.address,
                    engine: engine.name.clone(),
                    task,
                },
            );
        }
        // Whatever is left in `running` left the pool: dropped, hence aborted.
        self.running = keep;
    }

    fn stop_all(&mut self) {
        self.running.clear();
    }
}

#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod tests;
