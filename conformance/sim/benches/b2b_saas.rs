//! The reference's b2b-saas workload on a virtual-time fleet: 8 large-profile replicas,
//! 150 groups × 5 prompts (6,000-token shared prefix + 1,200-token question, 1,000 output
//! tokens), Poisson arrivals for 10 simulated minutes. Prints the simulated/wall-clock
//! ratio and the routing outcome for round robin and a prefix+load scorer.
//!
//! `cargo bench -p switchyard-sim --bench b2b_saas [-- QPS]` (default 60 QPS).

use std::time::Instant;

use switchyard_sim::engine::Profile;
use switchyard_sim::fleet::{
    Fleet, FleetConfig, PrefixLoadScorer, RateSchedule, RoundRobin, Router, SharedPrefix,
};

const SIM_SECONDS: u64 = 600;

fn run(name: &str, qps: f64, router: &mut dyn Router) -> f64 {
    let mut fleet = Fleet::new(FleetConfig::new(8, Profile::Large.config()));
    let hasher = fleet.hasher();
    let started = Instant::now();
    let arrivals = SharedPrefix::b2b_saas().arrivals(
        &hasher,
        RateSchedule::constant(qps, SIM_SECONDS * 1_000_000),
        42,
    );
    let report = fleet.run(arrivals, router, SIM_SECONDS * 1_000_000);
    let wall = started.elapsed().as_secs_f64();
    let steps: u64 = report.replicas.iter().map(|r| r.steps).sum();
    println!(
        "b2b-saas {qps} QPS, 8 replicas, {SIM_SECONDS} s simulated, {name}: wall {wall:.2} s, \
         simulated/wall {:.0}×, {steps} engine steps\n    {report}",
        SIM_SECONDS as f64 / wall
    );
    wall
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number sets the rate.
    let qps = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<f64>().ok())
        .unwrap_or(60.0);
    let rr = run("round robin", qps, &mut RoundRobin::default());
    let scored = run("prefix+load scorer", qps, &mut PrefixLoadScorer::default());
    let worst = rr.max(scored);
    println!("slowest run: {worst:.2} s wall for {SIM_SECONDS} s simulated (target < 60 s)");
}
