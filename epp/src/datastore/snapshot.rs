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

/// Default budget of all prefix tables together (512 MiB, 2²⁶ entries): with the chart's
/// 4 Gi limit it leaves room for the budget of buffered bytes (1 GiB) and the rest.
pub const DEFAULT_POOL_PREFIX_BYTES: usize = 512 << 20;

/// How endpoints' prefix tables are sized (`prefix-cache-scorer` parameters, plus a
/// pool-wide budget), so neither model servers nor the pool's size decide the EPP's memory
/// (review finding M12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixSizing {
    /// `lruCapacityPerServer`: entries of a table before (or without) auto-tuning.
    pub capacity_per_server: usize,
    /// `autoTune`: size each table to its server's KV cache (`num_gpu_blocks`).
    pub auto_tune: bool,
    /// Bytes all tables may take together; each endpoint gets at most an equal share.
    pub pool_bytes: usize,
}

impl Default for PrefixSizing {
    fn default() -> Self {
        Self {
            capacity_per_server: crate::prefix::DEFAULT_LRU_CAPACITY_PER_SERVER,
            auto_tune: true,
            pool_bytes: DEFAULT_POOL_PREFIX_BYTES,
        }
    }
}

impl PrefixSizing {
    /// The entries of one table in a pool of `endpoints`: `wanted` (the configured or
    /// tuned size), capped by the per-table ceiling and an equal share of the pool budget,
    /// and rounded up to a power of two so a reported size that wobbles does not replace
    /// the table (and drop its affinity) at every scrape.
    pub fn table_capacity(&self, wanted: usize, endpoints: usize) -> usize {
        let share = self.pool_bytes / std::mem::size_of::<u64>() / endpoints.max(1);
        let cap = MAX_TABLE_CAPACITY.min(share).max(crate::prefix::WAYS);
        wanted
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .min(cap)
    }
}

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
    /// How endpoints' prefix tables are sized; fixed at start-up.
    pub prefix_sizing: PrefixSizing,
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
                        // Sized for real by `fit_prefix_tables` once the pool is known;
                        // nothing is allocated before the first insert.
                        prefix: Arc::new(PrefixTable::new(self.prefix_sizing.capacity_per_server)),
                        ..Endpoint::new(&name, &pod.name, address)
                    },
                };
                endpoints.push(endpoint);
            }
        }
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        endpoints.dedup_by(|a, b| a.name == b.name);
        self.fit_prefix_tables(&mut endpoints);
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
            endpoint.metrics = scrape.metrics;
            endpoint.scraped_at = Some(scrape.scraped_at);
            endpoint.load.scrape_published(scrape.dispatch_mark);
        }
        let mut endpoints = std::mem::take(&mut next.endpoints);
        next.fit_prefix_tables(&mut endpoints);
        next.endpoints = endpoints;
        next
    }

    /// Gives each endpoint a prefix table of the size [`PrefixSizing`] allows now: tuned to
    /// its server's KV cache (one entry per GPU block) when `autoTune` is on and the server
    /// reports it, else `lruCapacityPerServer`; never past an equal share of the pool
    /// budget. A table whose size changes starts afresh.
    fn fit_prefix_tables(&self, endpoints: &mut [Endpoint]) {
        let sizing = self.prefix_sizing;
        let count = endpoints.len();
        for endpoint in endpoints {
            let tuned = endpoint
                .metrics
                .cache_num_blocks
                .filter(|_| sizing.auto_tune)
                .map(|blocks| usize::try_from(blocks).unwrap_or(usize::MAX));
            let wanted = tuned.unwrap_or(sizing.capacity_per_server);
            let table = PrefixTable::new(sizing.table_capacity(wanted, count));
            if table.capacity() != endpoint.prefix.capacity() {
                endpoint.prefix = Arc::new(table);
            }
        }
    }
}
