//! Scheduling: filters → weighted scorers → picker over one snapshot.
//!
//! [`Scheduler::pick`] is the request path. It reads one `&PoolSnapshot`,
//! takes no lock, does no I/O and allocates only the returned [`Pick`]
//! (scratch buffers are per thread and reused). Its only side effects are on
//! atomics: it reserves in-flight load on the chosen endpoint, so the next
//! pick on the same (stale) snapshot already sees it, and records the
//! prompt's blocks in the chosen endpoint's prefix table.

pub mod config;
pub mod plugins;

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use crate::datastore::{Endpoint, PoolSnapshot, Reservation};
use crate::prefix::{CHARS_PER_TOKEN, hash_prompt};
use crate::scheduling::plugins::address_matches;

pub use config::{PrefixParameters, SchedulerConfig};

/// What the scheduler needs to know about one request.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// The model the request will be served as (after rewrites); a LoRA
    /// adapter's name when it targets one.
    pub target_model: &'a str,
    /// The text whose prefix is matched (the prompt, or the chat messages).
    pub prompt: &'a [u8],
    /// The request's `cache_salt`, empty when absent.
    pub cache_salt: &'a str,
    /// The data plane's subset hint: `None` when absent (whole pool
    /// eligible), otherwise the only eligible `ip:port` or `ip` entries.
    pub subset: Option<&'a [String]>,
    /// The conformance header `test-epp-endpoint-selection`, if present.
    pub test_endpoint_selection: Option<&'a str>,
    /// The time metrics staleness is judged against.
    pub now: Instant,
}

/// What filters and scorers see.
#[derive(Debug)]
pub struct Context<'a> {
    /// The snapshot being scheduled over.
    pub snapshot: &'a PoolSnapshot,
    /// The request.
    pub request: &'a RequestView<'a>,
    /// The prompt's chained block hashes (empty without a prefix scorer).
    pub prefix_hashes: &'a [u64],
}

impl<'a> Context<'a> {
    /// The snapshot endpoint at `index`.
    pub fn endpoint(&self, index: usize) -> Option<&'a Endpoint> {
        self.snapshot.endpoints.get(index)
    }
}

/// Why no endpoint could be picked. Maps onto upstream's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCapacity {
    /// The pool has no ready endpoint (503).
    EmptyPool,
    /// The subset hint was empty or named no eligible endpoint (503).
    EmptySubset,
    /// Filters rejected every candidate (429).
    AllFiltered,
}

impl NoCapacity {
    /// The HTTP status upstream answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::EmptyPool | Self::EmptySubset => 503,
            Self::AllFiltered => 429,
        }
    }
}

impl fmt::Display for NoCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptyPool => "the pool has no ready endpoint",
            Self::EmptySubset => "no endpoint of the pool is in the gateway's subset hint",
            Self::AllFiltered => "every endpoint was filtered out (the pool is saturated)",
        })
    }
}

impl std::error::Error for NoCapacity {}

/// The chosen endpoints, best first, holding the load reservation on the
/// first; drop it when the request completes or its stream ends.
#[derive(Debug)]
pub struct Pick {
    /// Distinct endpoint addresses: the target, then fallbacks.
    pub endpoints: Vec<SocketAddr>,
    /// The in-flight reservation on `endpoints[0]`.
    pub reservation: Reservation,
    /// The prompt's block hashes, kept only when there are fallbacks, so the prefix is
    /// recorded on the endpoint that really served (empty otherwise: no allocation).
    pub fallback_hashes: Vec<u64>,
}

impl Pick {
    /// The proxy reports that `served` (a pool member) served the request: when it is a
    /// fallback rather than the target, the reservation and the prompt's prefix move to
    /// it, so load and cache affinity are accounted where the request really went (review
    /// finding L7). It becomes `endpoints[0]`; calling again is a no-op.
    pub fn served_by(&mut self, served: &Endpoint) {
        let Some(position) = self.endpoints.iter().position(|a| *a == served.address) else {
            // Not one of ours: the report is not trusted to move load.
            return;
        };
        if position == 0 {
            return;
        }
        self.reservation = served.load.reserve(self.reservation.tokens());
        for &hash in &self.fallback_hashes {
            served.prefix.insert(hash);
        }
        if let Some(moved) = self.endpoints.get_mut(..=position) {
            moved.rotate_right(1);
        }
    }
}

impl Pick {
    /// The `x-gateway-destination-endpoint` value: `ip:port[,ip:port…]`,
    /// IPv6 bracketed.
    pub fn destination(&self) -> String {
        use fmt::Write;
        let mut out = String::with_capacity(self.endpoints.len() * 24);
        for (i, address) in self.endpoints.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{address}");
        }
        out
    }
}

/// A configured scheduler.
#[derive(Debug, Default)]
pub struct Scheduler {
    config: SchedulerConfig,
}

/// Per-thread buffers reused across picks.
#[derive(Default)]
struct Scratch {
    candidates: Vec<usize>,
    hashes: Vec<u64>,
    scores: Vec<f64>,
    totals: Vec<f64>,
    keys: Vec<f64>,
    order: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scheduler {
    /// A scheduler running `config`.
    pub fn new(config: SchedulerConfig) -> Self {
        Self { config }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Picks the endpoint(s) for `request`. Never returns an endpoint that is
    /// unready, not in `snapshot`, or outside the subset hint.
    pub fn pick(
        &self,
        snapshot: &PoolSnapshot,
        request: &RequestView<'_>,
    ) -> Result<Pick, NoCapacity> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.pick_with(snapshot, request, &mut scratch),
            // Re-entered from inside a pick (not done today): use fresh buffers.
            Err(_) => self.pick_with(snapshot, request, &mut Scratch::default()),
        })
    }

    fn pick_with(
        &self,
        snapshot: &PoolSnapshot,
        request: &RequestView<'_>,
        s: &mut Scratch,
    ) -> Result<Pick, NoCapacity> {
        s.candidates.clear();
        s.candidates.extend(
            snapshot
                .endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| e.ready)
                .map(|(i, _)| i),
        );
        if s.candidates.is_empty() {
            return Err(NoCapacity::EmptyPool);
        }
        // Outlier ejection, unless it would leave nobody (Envoy's panic threshold).
        let ejected = |i: &usize| {
            snapshot
                .endpoints
                .get(*i)
                .is_some_and(|e| e.is_ejected(request.now))
        };
        if s.candidates.iter().any(ejected) && !s.candidates.iter().all(ejected) {
            s.candidates.retain(|i| !ejected(i));
        }
        if let Some(subset) = request.subset {
            s.candidates.retain(|&i| {
                snapshot
                    .endpoints
                    .get(i)
                    .is_some_and(|e| subset.iter().any(|entry| address_matches(entry, e.address)))
            });
            if s.candidates.is_empty() {
                return Err(NoCapacity::EmptySubset);
            }
        }

        s.hashes.clear();
        if let Some(prefix) = &self.config.prefix {
            let (block_chars, max_blocks) = prefix_geometry(prefix, snapshot);
            hash_prompt(
                request.target_model,
                request.cache_salt,
                request.prompt,
                block_chars,
                max_blocks,
                &mut s.hashes,
            );
        }
        let ctx = Context {
            snapshot,
            request,
            prefix_hashes: &s.hashes,
        };

        for filter in &self.config.filters {
            filter.filter(&ctx, &mut s.candidates);
            if s.candidates.is_empty() {
                return Err(NoCapacity::AllFiltered);
            }
        }

        let n = s.candidates.len();
        s.totals.clear();
        s.totals.resize(n, 0.0);
        s.scores.clear();
        s.scores.resize(n, 0.0);
        for (scorer, weight) in &self.config.scorers {
            scorer.score(&ctx, &s.candidates, &mut s.scores);
            for (total, score) in s.totals.iter_mut().zip(&s.scores) {
                // Clamp as upstream does; a NaN score counts as 0.
                let clamped = if score.is_nan() {
                    0.0
                } else {
                    score.clamp(0.0, 1.0)
                };
                *total += clamped * weight;
            }
        }

        s.keys.clear();
        s.keys.resize(n, 0.0);
        s.order.clear();
        s.order.extend(0..n);
        // `n` ≥ 1 here; min/max (not clamp) so a future path with n = 0 cannot panic.
        let count = self.config.picker.max_endpoints.max(1).min(n);
        self.config
            .picker
            .order(&s.totals, &mut s.keys, &mut s.order, count);
        let chosen = s.order[..count].iter().filter_map(|&pos| {
            s.candidates
                .get(pos)
                .and_then(|&i| snapshot.endpoints.get(i))
        });
        let mut endpoints = Vec::with_capacity(count);
        let mut primary = None;
        for endpoint in chosen {
            primary.get_or_insert(endpoint);
            endpoints.push(endpoint.address);
        }
        let Some(primary) = primary else {
            return Err(NoCapacity::AllFiltered);
        };
        let tokens = (request.prompt.len() / CHARS_PER_TOKEN) as u64;
        let reservation = primary.load.reserve(tokens);
        for &hash in &s.hashes {
            primary.prefix.insert(hash);
        }
        let fallback_hashes = if endpoints.len() > 1 {
            s.hashes.clone()
        } else {
            Vec::new()
        };
        Ok(Pick {
            endpoints,
            reservation,
            fallback_hashes,
        })
    }
}

/// Block size in characters and block cap for this pick: with auto-tuning,
/// the servers' own KV block size (the first one reported) replaces the
/// configured one.
fn prefix_geometry(prefix: &PrefixParameters, snapshot: &PoolSnapshot) -> (usize, usize) {
    let tuned = prefix
        .auto_tune
        .then(|| {
            snapshot
                .endpoints
                .iter()
                .find_map(|e| e.metrics.cache_block_size)
        })
        .flatten()
        .map(|tokens| tokens as usize);
    let block_tokens = tuned.unwrap_or(prefix.block_size_tokens).max(1);
    let block_chars = match (tuned, prefix.block_size) {
        (None, Some(chars)) => chars.max(1),
        _ => block_tokens * CHARS_PER_TOKEN,
    };
    let max_blocks = prefix
        .max_prefix_tokens_to_match
        .map_or(prefix.max_prefix_blocks_to_match, |tokens| {
            tokens / block_tokens
        });
    (block_chars, max_blocks)
}

#[cfg(test)]
pub(crate) mod tests;
