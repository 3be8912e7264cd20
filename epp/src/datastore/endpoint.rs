//! One model-server endpoint (`podIP:targetPort`) and the pod facts it is built from.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::protocol::ACTIVE_PORTS_ANNOTATION;

use crate::datastore::health::EndpointHealth;
use crate::datastore::load::EndpointLoad;
use crate::error::{Error, Result};
use crate::prefix::PrefixTable;

/// What the pool watcher knows about one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// The pod's name.
    pub name: String,
    /// The pod IP (IPv4 or IPv6), absent before the pod is scheduled.
    pub ip: Option<IpAddr>,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Whether the pod's Ready condition is True.
    pub ready: bool,
    /// Whether the pod has a deletion timestamp.
    pub deleting: bool,
}

/// A schedulable model-server endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `<pod>-rank-<i>`, where `i` is the target port's index in the pool.
    pub name: Arc<str>,
    /// The pod the endpoint belongs to.
    pub pod_name: Arc<str>,
    /// `podIP:targetPort`.
    pub address: SocketAddr,
    /// The pod's labels (the engine type among them).
    pub labels: Arc<BTreeMap<String, String>>,
    /// The last scraped metrics (defaults until the first scrape).
    pub metrics: EndpointMetrics,
    /// When `metrics` were scraped; `None` before the first scrape.
    pub scraped_at: Option<Instant>,
    /// Whether the endpoint may receive traffic.
    pub ready: bool,
    /// The EPP's own in-flight accounting, shared across snapshots.
    pub load: Arc<EndpointLoad>,
    /// Outcomes seen on the response path and the outlier ejection they lead to, shared
    /// across snapshots.
    pub health: Arc<EndpointHealth>,
    /// The prompt prefixes this server has probably cached, shared across snapshots.
    pub prefix: Arc<PrefixTable>,
}

/// What the EPP knows about one model server's load, from its last scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointMetrics {
    /// Requests queued in the engine, not yet running.
    pub waiting_queue: u32,
    /// Requests the engine is running.
    pub running: u32,
    /// KV-cache utilisation, clamped to 0–1.
    pub kv_cache_usage: f64,
    /// LoRA adapters loaded and serving.
    pub active_loras: Arc<[Box<str>]>,
    /// LoRA adapters requested and waiting to be loaded.
    pub waiting_loras: Arc<[Box<str>]>,
    /// How many adapters the server can hold at once, when it says.
    pub max_loras: Option<u32>,
    /// KV-cache block size in tokens (vLLM `block_size`, SGLang `page_size`).
    pub cache_block_size: Option<u32>,
    /// Number of KV-cache blocks on the GPU (vLLM `num_gpu_blocks`).
    pub cache_num_blocks: Option<u64>,
}

// === impl Endpoint ===

impl Endpoint {
    /// A ready endpoint with no metrics yet.
    pub fn new(name: &str, pod_name: &str, address: SocketAddr) -> Self {
        Self {
            name: name.into(),
            pod_name: pod_name.into(),
            address,
            labels: Arc::default(),
            metrics: EndpointMetrics::default(),
            scraped_at: None,
            ready: true,
            load: Arc::default(),
            health: Arc::default(),
            prefix: Arc::default(),
        }
    }

    /// How old the metrics are at `now`; `None` when never scraped.
    pub fn metrics_age(&self, now: Instant) -> Option<Duration> {
        self.scraped_at.map(|at| now.saturating_duration_since(at))
    }

    /// Whether outlier ejection keeps the endpoint out of picks at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.health.is_ejected(now)
    }

    /// Whether the metrics are missing or older than `threshold` at `now`.
    pub fn is_stale(&self, now: Instant, threshold: Duration) -> bool {
        self.metrics_age(now).is_none_or(|age| age > threshold)
    }
}

// === impl PodView ===

impl PodView {
    /// The `(name, address)` of each endpoint this pod contributes: one per
    /// target port, restricted by the active-ports annotation when present.
    /// Pods that are unready, terminating or without an IP contribute none.
    pub fn endpoints(&self, target_ports: &[u16]) -> Result<Vec<(String, SocketAddr)>> {
        let Some(ip) = self.ip.filter(|_| self.ready && !self.deleting) else {
            return Ok(Vec::new());
        };
        let active = self.active_ports()?;
        Ok(target_ports
            .iter()
            .enumerate()
            .filter(|(_, port)| active.as_ref().is_none_or(|a| a.contains(port)))
            .map(|(rank, port)| {
                (
                    format!("{}-rank-{rank}", self.name),
                    SocketAddr::new(ip, *port),
                )
            })
            .collect())
    }

    fn active_ports(&self) -> Result<Option<Vec<u16>>> {
        let Some(value) = self.annotations.get(ACTIVE_PORTS_ANNOTATION) else {
            return Ok(None);
        };
        value
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<u16>().ok().filter(|n| *n != 0).ok_or_else(|| Error::PodMetadata {
                    pod: self.name.clone(),
                    reason: format!(
                        "annotation {ACTIVE_PORTS_ANNOTATION}=`{value}` holds `{p}`, which is not a port \
                         number; write a comma-separated list of the pool's target ports, e.g. `8000,8001`"
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
