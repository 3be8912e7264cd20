//! `prefix-cache-affinity-filter` (llm-d's "sticky until saturated"): keep a request on the
//! endpoints that already hold most of its prefix, until sticking would cost more queueing
//! than a cold prefill elsewhere saves.

use rand::RngExt;
use serde::Deserialize;

use super::{Filter, parameters};
use crate::error::{Error, Result};
use crate::scheduling::Context;

/// Parameters, with upstream's names and defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct AffinityParameters {
    /// Share of the prompt's blocks an endpoint must hold to be sticky.
    affinity_threshold: f64,
    /// Chance of skipping the filter for a pick (explores other endpoints).
    exploration_probability: f64,
    /// Largest extra estimated TTFT (ms) a sticky endpoint may cost over the least loaded.
    #[serde(rename = "maxTTFTPenaltyMs")]
    max_ttft_penalty_ms: f64,
    /// How TTFT is estimated; only `prefillThroughput` is implemented.
    ttft_source: String,
    /// Prefill tokens per second an endpoint clears (the estimate's divisor).
    peak_prefill_throughput: f64,
    /// Switchyard's addition: an endpoint whose scraped waiting queue is longer than this is
    /// never sticky, whatever this EPP's own in-flight count says (traffic from other EPPs or
    /// before a restart is invisible to it). 0 turns the bound off.
    max_waiting_queue: u32,
}

impl Default for AffinityParameters {
    fn default() -> Self {
        Self {
            affinity_threshold: 0.80,
            exploration_probability: 0.0,
            max_ttft_penalty_ms: 18_000.0,
            ttft_source: "prefillThroughput".into(),
            peak_prefill_throughput: 15_928.0,
            max_waiting_queue: DEFAULT_MAX_WAITING_QUEUE,
        }
    }
}

/// The default `maxWaitingQueue`: a server with more than this many requests waiting is
/// saturated whatever its prefix (review finding M13: a full prefix match must not beat a
/// saturated queue).
const DEFAULT_MAX_WAITING_QUEUE: u32 = 16;

/// Builds a `prefix-cache-affinity-filter` from its parameters.
pub(super) fn build(name: &str, type_: &str, params: serde_json::Value) -> Result<Box<dyn Filter>> {
    let p: AffinityParameters = parameters(name, type_, params)?;
    let reason = if !(0.0..=1.0).contains(&p.affinity_threshold) {
        Some("affinityThreshold must be in [0, 1]")
    } else if !(0.0..=1.0).contains(&p.exploration_probability) {
        Some("explorationProbability must be in [0, 1]")
    } else if !(p.max_ttft_penalty_ms >= 0.0 && p.max_ttft_penalty_ms.is_finite()) {
        Some("maxTTFTPenaltyMs must be a finite number ≥ 0")
    } else if !(p.peak_prefill_throughput > 0.0 && p.peak_prefill_throughput.is_finite()) {
        Some("peakPrefillThroughput must be a finite number > 0 (tokens per second)")
    } else if p.ttft_source != "prefillThroughput" {
        Some("ttftSource: only `prefillThroughput` is supported (no latency predictor)")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: reason.into(),
        });
    }
    Ok(Box::new(PrefixAffinityFilter {
        threshold: p.affinity_threshold,
        exploration: p.exploration_probability,
        max_penalty_s: p.max_ttft_penalty_ms / 1000.0,
        peak_prefill: p.peak_prefill_throughput,
        max_waiting: p.max_waiting_queue,
    }))
}

/// `prefix-cache-affinity-filter`: when some endpoints hold at least `threshold` of the
/// prompt's blocks (by the approximate prefix index, so a `prefix-cache-scorer` must be in
/// the profile), keeps only those whose estimated TTFT — this EPP's in-flight prompt tokens
/// on it over `peak_prefill` — is within `max_penalty_s` of the least loaded candidate's.
/// An endpoint with more than `max_waiting` requests in its scraped queue is not sticky.
/// With no sticky endpoint, or every sticky one too far behind (saturated), keeps all.
#[derive(Debug)]
pub struct PrefixAffinityFilter {
    threshold: f64,
    exploration: f64,
    max_penalty_s: f64,
    peak_prefill: f64,
    max_waiting: u32,
}

impl Default for PrefixAffinityFilter {
    /// Upstream's defaults: affinity 0.8, no exploration, an 18 s TTFT penalty at
    /// 15,928 prefill tokens per second.
    fn default() -> Self {
        let p = AffinityParameters::default();
        Self {
            threshold: p.affinity_threshold,
            exploration: p.exploration_probability,
            max_penalty_s: p.max_ttft_penalty_ms / 1000.0,
            peak_prefill: p.peak_prefill_throughput,
            max_waiting: p.max_waiting_queue,
        }
    }
}

impl Filter for PrefixAffinityFilter {
    fn type_name(&self) -> &'static str {
        "prefix-cache-affinity-filter"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let total = ctx.prefix_hashes.len();
        if total == 0 || candidates.len() < 2 {
            return;
        }
        if self.exploration > 0.0 && rand::rng().random_range(0.0..1.0) < self.exploration {
            return;
        }
        let ttft = |i: usize| {
            ctx.endpoint(i).map_or(f64::INFINITY, |e| {
                e.load.in_flight_tokens() as f64 / self.peak_prefill
            })
        };
        let sticky = |i: usize| {
            ctx.endpoint(i).is_some_and(|e| {
                (self.max_waiting == 0 || e.metrics.waiting_queue <= self.max_waiting)
                    && e.prefix.matched_blocks(ctx.prefix_hashes) as f64 / total as f64
                        >= self.threshold
            })
        };
        let least = candidates
            .iter()
            .map(|&i| ttft(i))
            .fold(f64::INFINITY, f64::min);
        let keep = |i: usize| sticky(i) && ttft(i) - least <= self.max_penalty_s;
        if candidates.iter().any(|&i| keep(i)) {
            candidates.retain(|&i| keep(i));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::datastore::EndpointMetrics;
    use crate::scheduling::tests::{pool, request};
    use crate::scheduling::{Scheduler, SchedulerConfig};

    /// The filter (with `params`) in front of the queue scorer; the prefix scorer at weight 0
    /// only feeds the filter its prefix match.
    fn sticky(params: &str) -> Scheduler {
        let text = format!(
            "plugins:\n\
             - {{type: prefix-cache-affinity-filter, parameters: {{{params}}}}}\n\
             - {{type: prefix-cache-scorer}}\n- {{type: queue-scorer}}\n\
             schedulingProfiles:\n- name: p\n  plugins:\n\
             \x20 - {{pluginRef: prefix-cache-affinity-filter}}\n\
             \x20 - {{pluginRef: prefix-cache-scorer, weight: 0}}\n\
             \x20 - {{pluginRef: queue-scorer, weight: 1}}\n"
        );
        Scheduler::new(SchedulerConfig::from_yaml(&text).unwrap())
    }

    fn waiting(q: u32) -> EndpointMetrics {
        EndpointMetrics {
            waiting_queue: q,
            ..EndpointMetrics::default()
        }
    }

    #[test]
    fn a_warm_server_keeps_its_prefix_until_its_queue_passes_the_bound() {
        let scheduler = sticky("");
        let prompt = vec![b'p'; 2048];
        let mut snapshot = pool(&[waiting(0), waiting(0)]);
        let warm = scheduler
            .pick(&snapshot, &request(&prompt))
            .unwrap()
            .endpoints[0];
        let (w, cold) = if snapshot.endpoints[0].address == warm {
            (0, 1)
        } else {
            (1, 0)
        };
        // Busier than the cold server, but sticky: the queue scorer alone would move it.
        snapshot.endpoints[w].metrics = waiting(3);
        assert_eq!(
            scheduler
                .pick(&snapshot, &request(&prompt))
                .unwrap()
                .endpoints[0],
            warm
        );
        // Past the waiting-queue bound (16) it is saturated and the request moves.
        snapshot.endpoints[w].metrics = waiting(17);
        let moved = scheduler
            .pick(&snapshot, &request(&prompt))
            .unwrap()
            .endpoints[0];
        assert_eq!(moved, snapshot.endpoints[cold].address);
    }

    #[test]
    fn in_flight_prompt_tokens_past_the_ttft_penalty_release_the_affinity() {
        // 1 s of penalty at 100 tokens/s: 100 in-flight tokens more than the idlest server.
        let scheduler = sticky("maxTTFTPenaltyMs: 1000, peakPrefillThroughput: 100");
        let prompt = vec![b'q'; 2048]; // 512 tokens
        let snapshot = pool(&[waiting(0), waiting(0)]);
        let held = scheduler.pick(&snapshot, &request(&prompt)).unwrap();
        let warm = held.endpoints[0];
        let next = scheduler
            .pick(&snapshot, &request(&prompt))
            .unwrap()
            .endpoints[0];
        assert_ne!(
            next, warm,
            "512 held tokens = 5.1 s of estimated prefill > 1 s"
        );
        drop(held);
        // The default penalty (18 s at 15,928 tokens/s) keeps the same request sticky (on a
        // fresh pool: above, both servers have learnt the prefix by now).
        let snapshot = pool(&[waiting(0), waiting(0)]);
        let patient = sticky("");
        let held = patient.pick(&snapshot, &request(&prompt)).unwrap();
        let again = patient
            .pick(&snapshot, &request(&prompt))
            .unwrap()
            .endpoints[0];
        assert_eq!(again, held.endpoints[0]);
    }

    #[test]
    fn bad_parameters_say_what_to_fix() {
        for (params, needle) in [
            ("affinityThreshold: 2", "affinityThreshold"),
            ("ttftSource: latencyPredictor", "prefillThroughput"),
            ("peakPrefillThroughput: 0", "peakPrefillThroughput"),
            ("affinityTreshold: 0.5", "affinityTreshold"),
        ] {
            let text = format!(
                "plugins: [{{type: prefix-cache-affinity-filter, parameters: {{{params}}}}}]\n\
                 schedulingProfiles: [{{name: p, plugins: [{{pluginRef: prefix-cache-affinity-filter}}]}}]\n"
            );
            let err = SchedulerConfig::from_yaml(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{params}: {err}");
        }
    }
}
