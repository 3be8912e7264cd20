//! One run per workload × policy × rate over the calibrated large profile, in parallel,
//! and the figures each run yields.
//!
//! A run plays `duration_seconds` of arrivals at the rate into a fresh fleet, then lets
//! the fleet drain, so every request that was accepted completes and counts: output
//! throughput is tokens generated over the run's span (first arrival to last token), as
//! a benchmark client measures it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use switchyard_sim::engine::{Micros, Profile};
use switchyard_sim::fleet::{Fleet, FleetConfig, FleetReport, percentile};

use crate::error::Result;
use crate::policy::{self, SCRAPE_US};
use crate::workload::WorkloadSpec;

/// Longest a run may drain after its last arrival (simulated), so a hopeless overload
/// still ends; requests unfinished by then count as neither completed nor rejected.
pub const DRAIN_LIMIT_US: Micros = 3_600_000_000;

/// The figures of one workload × policy × rate run (the fields of results.json).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    /// Workload name.
    pub workload: String,
    /// Policy name.
    pub policy: String,
    /// Offered requests per second.
    pub rate: f64,
    /// Output tokens per second over the run.
    pub out_tok_s: f64,
    /// Median time to first token (s).
    pub ttft_p50_s: f64,
    /// 90th-percentile time to first token (s).
    pub ttft_p90_s: f64,
    /// Median of the requests' mean inter-token latency (s).
    pub itl_p50_s: f64,
    /// Fleet prefix-cache hit rate: cached prompt tokens / prompt tokens.
    pub hit_rate: f64,
    /// Requests completed.
    pub completed: usize,
    /// Requests refused (by an engine's full queue or by the router).
    pub rejected: usize,
    /// Recompute preemptions in the fleet.
    pub preempted: u64,
    /// LoRA adapter loads per 1,000 requests (not in results.json's fixed schema).
    #[serde(skip)]
    pub adapter_loads_per_1k: f64,
    /// Largest mean running count of a replica over the fleet mean (hot-spotting).
    #[serde(skip)]
    pub hottest_replica: f64,
}

impl RunResult {
    fn from_report(workload: &str, policy: &str, rate: f64, r: &FleetReport) -> Self {
        let nan = f64::NAN;
        let mut itl: Vec<f64> = r.completed().filter_map(|x| x.itl_mean_us).collect();
        let loads: u64 = r.replicas.iter().map(|x| x.lora_loads).sum();
        let arrivals = r.results.len().max(1) as f64;
        let means: Vec<f64> = r
            .replicas
            .iter()
            .map(|x| {
                let n = x.samples.len().max(1) as f64;
                x.samples.iter().map(|s| s.running as f64).sum::<f64>() / n
            })
            .collect();
        let fleet_mean = means.iter().sum::<f64>() / means.len().max(1) as f64;
        let hottest = means.iter().copied().fold(0.0, f64::max);
        Self {
            workload: workload.into(),
            policy: policy.into(),
            rate,
            out_tok_s: r.output_tokens_per_s(),
            ttft_p50_s: r.ttft_percentile_s(50.0).unwrap_or(nan),
            ttft_p90_s: r.ttft_percentile_s(90.0).unwrap_or(nan),
            itl_p50_s: percentile(&mut itl, 50.0).map_or(nan, |u| u / 1e6),
            hit_rate: r.hit_rate(),
            completed: r.completed().count(),
            rejected: r.rejected(),
            preempted: r.preemptions(),
            adapter_loads_per_1k: loads as f64 * 1000.0 / arrivals,
            hottest_replica: if fleet_mean > 0.0 {
                hottest / fleet_mean
            } else {
                1.0
            },
        }
    }
}

/// The fleet every run uses: `replicas` replicas of the calibrated large profile, metrics
/// views refreshed every [`SCRAPE_US`], with the workload's adapters.
pub fn fleet_config(spec: &WorkloadSpec, replicas: usize) -> FleetConfig {
    let mut engine = Profile::Large.config();
    if let Some(max) = spec.max_loras {
        engine.max_loras = max;
    }
    let mut config = FleetConfig::new(replicas, engine);
    config.adapters = spec.adapters();
    config.snapshot_interval_us = SCRAPE_US;
    config
}

/// Runs `policy` on `spec` at `rate`; `on_arrival` is called as the fleet takes each
/// arrival (progress).
pub fn run_one(
    spec: &WorkloadSpec,
    policy_name: &str,
    rate: f64,
    replicas: usize,
    on_arrival: &dyn Fn(),
) -> Result<RunResult> {
    let mut fleet = Fleet::new(fleet_config(spec, replicas));
    let arrivals = spec.arrivals(rate, &fleet.hasher());
    let mut router = policy::build(policy_name, replicas, spec.seed ^ rate.to_bits())?;
    let until = (spec.duration_seconds * 1e6) as Micros + DRAIN_LIMIT_US;
    let report = fleet.run(
        arrivals.into_iter().inspect(|_| on_arrival()),
        router.as_mut(),
        until,
    );
    Ok(RunResult::from_report(
        &spec.name,
        policy_name,
        rate,
        &report,
    ))
}

/// One point of a sweep.
#[derive(Debug, Clone)]
pub struct Point {
    /// Index into the sweep's workloads.
    pub workload: usize,
    /// Policy name.
    pub policy: String,
    /// Rate.
    pub rate: f64,
}

/// Runs every point on `threads` threads, one progress bar per run when `progress`;
/// results come back in the order of `points`.
pub fn run_all(
    workloads: &[WorkloadSpec],
    points: &[Point],
    replicas: usize,
    threads: usize,
    progress: bool,
) -> Result<Vec<RunResult>> {
    let bars = MultiProgress::new();
    if !progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>40} [{bar:30}] {pos}/{len} arrivals {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunResult>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(point) = points.get(i) else {
                        break;
                    };
                    let spec = &workloads[point.workload];
                    let total = (spec.duration_seconds * point.rate) as u64;
                    let bar = bars.add(ProgressBar::new(total.max(1)));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!(
                        "{} · {} · {}/s",
                        spec.name, point.policy, point.rate
                    ));
                    let out = run_one(spec, &point.policy, point.rate, replicas, &|| bar.inc(1));
                    match &out {
                        Ok(r) => bar.finish_with_message(format!(
                            "{:.0} tok/s, TTFT p90 {:.2} s, hits {:.0}%",
                            r.out_tok_s,
                            r.ttft_p90_s,
                            r.hit_rate * 100.0
                        )),
                        Err(e) => bar.abandon_with_message(e.to_string()),
                    }
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(out);
                    }
                }
            });
        }
    });
    let all = results.into_inner().unwrap_or_default();
    all.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(crate::Error::Write(
                    "sweep".into(),
                    "a run did not finish".into(),
                ))
            })
        })
        .collect()
}
