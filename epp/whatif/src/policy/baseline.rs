//! Proxy-side baselines, which know only their own outstanding requests, and the
//! precise-prefix oracle, which reads the engines' true caches.

use switchyard_sim::fleet::{Arrival, ReplicaView, RequestResult, Router};
use switchyard_sim::rng::SplitMix64;

/// Uniformly random replica (a Kubernetes Service with kube-proxy's random mode).
#[derive(Debug, Clone)]
pub struct RandomChoice {
    rng: SplitMix64,
}

impl RandomChoice {
    /// Draws fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }
}

impl Router for RandomChoice {
    fn pick(&mut self, _arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        self.rng.range(0, replicas.len().max(1) as u64 - 1) as usize
    }
}

/// Outstanding requests per replica as a proxy counts them: +1 at dispatch, −1 at the end.
#[derive(Debug, Clone)]
struct Outstanding {
    count: Vec<u32>,
    /// Replica of each dispatched request, by arrival index.
    placed: Vec<u32>,
}

impl Outstanding {
    fn new(replicas: usize) -> Self {
        Self {
            count: vec![0; replicas.max(1)],
            placed: Vec::new(),
        }
    }

    fn dispatch(&mut self, index: u64, replica: usize) {
        let i = index as usize;
        if self.placed.len() <= i {
            self.placed.resize(i + 1, u32::MAX);
        }
        self.placed[i] = replica as u32;
        if let Some(c) = self.count.get_mut(replica) {
            *c += 1;
        }
    }

    fn finish(&mut self, index: u64) {
        if let Some(&r) = self.placed.get(index as usize)
            && let Some(c) = self.count.get_mut(r as usize)
        {
            *c = c.saturating_sub(1);
        }
    }
}

/// Envoy's `LEAST_REQUEST` over all hosts: fewest outstanding requests, random among ties.
#[derive(Debug, Clone)]
pub struct LeastRequest {
    load: Outstanding,
    rng: SplitMix64,
    next: u64,
}

impl LeastRequest {
    /// For `replicas` replicas; `seed` fixes the tie-breaks.
    pub fn new(replicas: usize, seed: u64) -> Self {
        Self {
            load: Outstanding::new(replicas),
            rng: SplitMix64::new(seed),
            next: 0,
        }
    }
}

impl Router for LeastRequest {
    fn pick(&mut self, _arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        let n = replicas.len().max(1).min(self.load.count.len());
        let start = self.rng.range(0, n as u64 - 1) as usize;
        let best = (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&i| self.load.count[i])
            .unwrap_or(0);
        self.load.dispatch(self.next, best);
        self.next += 1;
        best
    }

    fn on_finish(&mut self, result: &RequestResult) {
        self.load.finish(result.index);
    }
}

/// Power of two choices: two distinct random replicas, the one with fewer outstanding.
#[derive(Debug, Clone)]
pub struct PowerOfTwo {
    load: Outstanding,
    rng: SplitMix64,
    next: u64,
}

impl PowerOfTwo {
    /// For `replicas` replicas; `seed` fixes the draws.
    pub fn new(replicas: usize, seed: u64) -> Self {
        Self {
            load: Outstanding::new(replicas),
            rng: SplitMix64::new(seed),
            next: 0,
        }
    }
}

impl Router for PowerOfTwo {
    fn pick(&mut self, _arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        let n = replicas.len().max(1).min(self.load.count.len()) as u64;
        let a = self.rng.range(0, n - 1) as usize;
        let b = if n > 1 {
            ((a as u64 + 1 + self.rng.range(0, n - 2)) % n) as usize
        } else {
            a
        };
        let best = if self.load.count[b] < self.load.count[a] {
            b
        } else {
            a
        };
        self.load.dispatch(self.next, best);
        self.next += 1;
        best
    }

    fn on_finish(&mut self, result: &RequestResult) {
        self.load.finish(result.index);
    }
}

/// Precise prefix routing at its best: the engines' true caches (what KV events would
/// report, with no lag) scored with GIE's weights — prefix 3, queue 2, KV 2 — over the
/// scraped load, where requests sent since the last scrape count as queued.
#[derive(Debug, Clone)]
pub struct PreciseOracle {
    load: Outstanding,
    /// Dispatches per replica since the last scrape.
    unseen: Vec<u32>,
    /// The scrape window of the last pick.
    window: Option<u64>,
    next: u64,
}

impl PreciseOracle {
    /// For `replicas` replicas.
    pub fn new(replicas: usize) -> Self {
        Self {
            load: Outstanding::new(replicas),
            unseen: vec![0; replicas.max(1)],
            window: None,
            next: 0,
        }
    }
}

impl Router for PreciseOracle {
    fn pick(&mut self, arrival: &Arrival, replicas: &[ReplicaView<'_>]) -> usize {
        let n = replicas.len().min(self.unseen.len());
        let window = arrival.at / super::SCRAPE_US;
        if self.window != Some(window) {
            // A new scrape: what was sent before it is in its numbers.
            self.window = Some(window);
            self.unseen.iter_mut().for_each(|u| *u = 0);
        }
        let queue = |i: usize| replicas[i].load.waiting as f64 + f64::from(self.unseen[i]);
        let (lo, hi) = (0..n).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), i| {
            (lo.min(queue(i)), hi.max(queue(i)))
        });
        let prompt = f64::from(arrival.prompt_tokens.max(1));
        let mut best = (f64::NEG_INFINITY, 0);
        for (i, r) in replicas.iter().take(n).enumerate() {
            let q = if hi > lo {
                (hi - queue(i)) / (hi - lo)
            } else {
                1.0
            };
            let prefix = r.prefix_hit_tokens(arrival) as f64 / prompt;
            // Exact ties go to the replica with fewer outstanding requests, then the lowest.
            let tie = -f64::from(self.load.count[i]) * 1e-6;
            let score = 3.0 * prefix + 2.0 * q + 2.0 * (1.0 - r.load.kv_usage) + tie;
            if score > best.0 {
                best = (score, i);
            }
        }
        self.unseen[best.1] += 1;
        self.load.dispatch(self.next, best.1);
        self.next += 1;
        best.1
    }

    fn on_finish(&mut self, result: &RequestResult) {
        self.load.finish(result.index);
    }
}
