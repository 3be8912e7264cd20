//! [`PoolSnapshot`]: the endpoints, objectives and rewrites of one pool at one instant.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_api::InferenceModelRewriteSpec;
use switchyard_api::objective::DEFAULT_PRIORITY;

use crate::datastore::endpoint::{Endpoint, PodView};
use crate::datastore::{EndpointMetrics, health};
use crate::error::Error;
use crate::prefix::PrefixTable;

/// A ceiling on one endpoint's prefix table (2²⁴ entries, 128 MiB), so a
/// server reporting an absurd block count cannot exhaust the EPP's memory.
const MAX_TABLE_CAPACITY: usize = 1 << 24;

/// One endpoint's scrape result.
#[derive(Clone, Debug)]
pub struct Scrape<'n> {
    /// The endpoint's name.
    pub endpoint: &'n str,
    /// What the scrape read.
    pub metrics: EndpointMetrics,
    /// When the scrape began.
    pub scraped_at: Instant,
    /// [`crate::datastore::EndpointLoad::mark_scrape_start`], taken just
    /// before the request for `/metrics` was sent.
    pub dispatch_mark: u64,
}

/// Everything a pick reads, immutable once published.
#[derive(Clone, Debug, Default)]
pub struct PoolSnapshot {
    /// The pool's name.
    pub pool_name: Arc<str>,
    /// The endpoints, ordered by name so rebuilds are deterministic.
    pub endpoints: Vec<Endpoint>,
    /// InferenceObjective name → effective priority.
    pub objectives: HashMap<String, i64>,
    /// InferenceModelRewrite specs, oldest object first (precedence order).
    pub rewrites: Vec<Arc<InferenceModelRewriteSpec>>,
}

// === impl PoolSnapshot ===

impl PoolSnapshot {
    /// The priority of the objective named `name` (0 when absent or unknown).
    pub fn priority(&self, name: Option<&str>) -> i64 {
        name.and_then(|n| self.objectives.get(n))
            .copied()
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// The endpoint at `address`, if it is a member.
    pub fn endpoint_at(&self, address: SocketAddr) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.address == address)
    }

    /// Feeds one request's outcome into the health of the member at `address`: `failed` is
    /// a 5xx (a model-server error, or Envoy's local reply for a refused connection).
    /// Returns how long the endpoint is now ejected for, when this failure ejected it; an
    /// ejection that would put more than [`health::max_ejected`] members out at once is
    /// skipped.
    pub fn record_outcome(
        &self,
        address: SocketAddr,
        failed: bool,
        now: Instant,
    ) -> Option<Duration> {
        let endpoint = self.endpoint_at(address)?;
        if !failed {
            endpoint.health.record_success();
            return None;
        }
        if !endpoint.health.record_failure(now) {
            return None;
        }
        let ejected = self.endpoints.iter().filter(|e| e.is_ejected(now)).count();
        if ejected >= health::max_ejected(self.endpoints.len()) {
            return None;
        }
        Some(endpoint.health.eject(now))
    }

    /// A new snapshot with the endpoints of `pods`. An endpoint that existed
    /// before with the same name and address keeps its metrics and its load
    /// counters. Pods with unusable metadata are skipped and reported.
    pub fn rebuild(&self, pods: &[PodView], target_ports: &[u16]) -> (Self, Vec<Error>) {
        let previous: HashMap<&str, &Endpoint> =
            self.endpoints.iter().map(|e| (&*e.name, e)).collect();
        let mut errors = Vec::new();
        let mut endpoints = Vec::new();
        for pod in pods {
            let members = match pod.endpoints(target_ports) {
                Ok(members) => members,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let labels = Arc::new(pod.labels.clone());
            for (name, address) in members {
                let endpoint = match previous.get(name.as_str()) {
                    Some(old) if old.address == address => Endpoint {
                        labels: Arc::clone(&labels),
                        ..(*old).clone()
                    },
                    _ => Endpoint {
                        labels: Arc::clone(&labels),
                        ..Endpoint::new(&name, &pod.name, address)
                    },
                };
                endpoints.push(endpoint);
            }
        }
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        endpoints.dedup_by(|a, b| a.name == b.name);
        let snapshot = Self {
            endpoints,
            ..self.clone()
        };
        (snapshot, errors)
    }

    /// A new snapshot with fresh metrics for the named endpoints; names no
    /// longer in the pool are ignored (the pod left while being scraped).
    /// Publish the result at once: each endpoint's load counters learn here
    /// which dispatches the new metrics already reflect.
    pub fn with_metrics<'n>(&self, scrapes: impl IntoIterator<Item = Scrape<'n>>) -> Self {
        let mut next = self.clone();
        for scrape in scrapes {
            // Endpoints are sorted by name (see `rebuild`).
            let Ok(index) = next
                .endpoints
                .binary_search_by(|e| (*e.name).cmp(scrape.endpoint))
            else {
                continue;
            };
            let Some(endpoint) = next.endpoints.get_mut(index) else {
                continue;
            };
            // Auto-tune: size the prefix table to the server's KV cache (one
            // entry per GPU block), starting afresh when it changes.
            if let Some(blocks) = scrape.metrics.cache_num_blocks {
                let capacity = usize::try_from(blocks)
                    .unwrap_or(usize::MAX)
                    .min(MAX_TABLE_CAPACITY);
                let tuned = PrefixTable::new(capacity);
                if tuned.capacity() != endpoint.prefix.capacity() {
                    endpoint.prefix = Arc::new(tuned);
                }
            }
            endpoint.metrics = scrape.metrics;
            endpoint.scraped_at = Some(scrape.scraped_at);
            endpoint.load.scrape_published(scrape.dispatch_mark);
        }
        next
    }
}
