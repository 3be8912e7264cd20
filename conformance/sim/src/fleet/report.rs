//! Per-request results and fleet-level summaries of a virtual-time run.

use std::fmt;

use crate::engine::Micros;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// All tokens generated.
    Completed,
    /// Refused at submission with this HTTP status (429 queue full, 400 too long…).
    Rejected(u16),
    /// Still queued or running when the run stopped.
    Unfinished,
}

/// What happened to one arrival.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestResult {
    /// Arrival index (order of the workload).
    pub index: u64,
    /// Replica the router picked.
    pub replica: usize,
    /// Workload group key of the arrival.
    pub group: u64,
    /// Arrival time (µs).
    pub arrival_us: Micros,
    /// Outcome.
    pub status: RequestStatus,
    /// Prompt length.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub output_tokens: u32,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: u32,
    /// Recompute preemptions suffered.
    pub preemptions: u32,
    /// Time the router held it before dispatch (µs); included in TTFT, e2e and queue.
    pub held_us: u64,
    /// Time to first token (µs).
    pub ttft_us: Option<u64>,
    /// Arrival to last token (µs).
    pub e2e_us: Option<u64>,
    /// Waiting time before first scheduling (µs).
    pub queue_us: Option<u64>,
    /// Mean inter-token latency (µs).
    pub itl_mean_us: Option<f64>,
    /// Largest inter-token gap (µs).
    pub itl_max_us: u64,
}

impl RequestResult {
    /// A result for an arrival that has not finished (yet).
    pub(crate) fn pending(
        index: u64,
        replica: usize,
        group: u64,
        arrival_us: Micros,
        prompt_tokens: u32,
    ) -> Self {
        Self {
            index,
            replica,
            group,
            arrival_us,
            status: RequestStatus::Unfinished,
            prompt_tokens,
            output_tokens: 0,
            cached_tokens: 0,
            preemptions: 0,
            held_us: 0,
            ttft_us: None,
            e2e_us: None,
            queue_us: None,
            itl_mean_us: None,
            itl_max_us: 0,
        }
    }

    /// Time per output token after the first: (e2e − TTFT) / (out − 1), µs.
    pub fn tpot_us(&self) -> Option<f64> {
        match (self.e2e_us, self.ttft_us) {
            (Some(e2e), Some(ttft)) if self.output_tokens > 1 => {
                Some((e2e - ttft) as f64 / f64::from(self.output_tokens - 1))
            }
            _ => None,
        }
    }
}

/// A periodic sample of one replica's load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSample {
    /// Sample time (µs).
    pub at: Micros,
    /// Waiting requests.
    pub waiting: usize,
    /// Running requests.
    pub running: usize,
    /// KV usage 0–1.
    pub kv_usage: f64,
}

/// Totals of one replica over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    /// Replica name.
    pub name: String,
    /// Load samples at the fleet's sample interval.
    pub samples: Vec<LoadSample>,
    /// Recompute preemptions.
    pub preemptions: u64,
    /// LoRA adapters loaded into a slot.
    pub lora_loads: u64,
    /// Prefix-cache query tokens.
    pub prefix_queries: u64,
    /// Prefix-cache hit tokens.
    pub prefix_hits: u64,
    /// Tokens generated.
    pub generation_tokens: u64,
    /// Engine steps taken.
    pub steps: u64,
    /// Most requests running at once (at step boundaries).
    pub max_running: usize,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetReport {
    /// One result per arrival, in arrival order.
    pub results: Vec<RequestResult>,
    /// One report per replica.
    pub replicas: Vec<ReplicaReport>,
    /// Virtual time at which the run stopped (µs).
    pub sim_end_us: Micros,
}

/// The `p`-th percentile (0–100, nearest rank) of `values`; sorts in place.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values.get(rank.min(values.len()) - 1).copied()
}

impl FleetReport {
    /// Completed requests.
    pub fn completed(&self) -> impl Iterator<Item = &RequestResult> {
        self.results
            .iter()
            .filter(|r| r.status == RequestStatus::Completed)
    }

    /// Requests refused at submission.
    pub fn rejected(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.status, RequestStatus::Rejected(_)))
            .count()
    }

    /// TTFT percentile over completed requests, seconds.
    pub fn ttft_percentile_s(&self, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .completed()
            .filter_map(|r| r.ttft_us)
            .map(|t| t as f64 / 1e6)
            .collect();
        percentile(&mut v, p)
    }

    /// TPOT percentile over completed requests, seconds.
    pub fn tpot_percentile_s(&self, p: f64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .completed()
            .filter_map(|r| r.tpot_us())
            .map(|t| t / 1e6)
            .collect();
        percentile(&mut v, p)
    }

    /// Generated tokens per second of virtual time, counting every token produced (also by
    /// requests still running at the end).
    pub fn output_tokens_per_s(&self) -> f64 {
        let tokens: u64 = self.replicas.iter().map(|r| r.generation_tokens).sum();
        if self.sim_end_us == 0 {
            return 0.0;
        }
        tokens as f64 / (self.sim_end_us as f64 / 1e6)
    }

    /// Fleet prefix-cache hit rate: Σ hits / Σ queries (tokens).
    pub fn hit_rate(&self) -> f64 {
        let q: u64 = self.replicas.iter().map(|r| r.prefix_queries).sum();
        let h: u64 = self.replicas.iter().map(|r| r.prefix_hits).sum();
        if q == 0 { 0.0 } else { h as f64 / q as f64 }
    }

    /// Total recompute preemptions.
    pub fn preemptions(&self) -> u64 {
        self.replicas.iter().map(|r| r.preemptions).sum()
    }

    /// Mean waiting-queue length over all samples of all replicas.
    pub fn mean_waiting(&self) -> f64 {
        let (sum, n) = self
            .replicas
            .iter()
            .flat_map(|r| &r.samples)
            .fold((0usize, 0usize), |(s, n), x| (s + x.waiting, n + 1));
        if n == 0 { 0.0 } else { sum as f64 / n as f64 }
    }
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = self.completed().count();
        let ms =
            |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |s| format!("{:.1} ms", s * 1e3));
        write!(
            f,
            "arrivals {} completed {} rejected {} | out {:.0} tok/s | TTFT p50 {} p90 {} | TPOT p50 {} | hit rate {:.1}% | mean waiting {:.1} | preemptions {}",
            self.results.len(),
            done,
            self.rejected(),
            self.output_tokens_per_s(),
            ms(self.ttft_percentile_s(50.0)),
            ms(self.ttft_percentile_s(90.0)),
            ms(self.tpot_percentile_s(50.0)),
            self.hit_rate() * 100.0,
            self.mean_waiting(),
            self.preemptions(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 50.0), Some(3.0));
        assert_eq!(percentile(&mut v, 90.0), Some(5.0));
        assert_eq!(percentile(&mut v, 0.0), Some(1.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }
}
