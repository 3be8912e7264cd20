//! The goals on a reduced, deterministic sweep (virtual time, fixed seeds): the
//! default profile against the baselines on the calibrated 8-replica fleet. The full sweep
//! is `cargo xtask whatif` (docs/routing.md); these points are a subset of it, run the same
//! way, so the figures printed here match the report's.
#![allow(clippy::unwrap_used)]

use switchyard_whatif::goals;
use switchyard_whatif::sweep::{Point, RunResult, run_all};
use switchyard_whatif::workload::WorkloadSpec;

fn sweep(plan: &[(&str, &[&str], &[f64])]) -> Vec<RunResult> {
    let specs: Vec<WorkloadSpec> = plan
        .iter()
        .map(|(w, _, _)| WorkloadSpec::load(w).unwrap())
        .collect();
    let mut points = Vec::new();
    for (i, (_, policies, rates)) in plan.iter().enumerate() {
        for p in *policies {
            for r in *rates {
                points.push(Point {
                    workload: i,
                    policy: (*p).to_owned(),
                    rate: *r,
                });
            }
        }
    }
    run_all(&specs, &points, 8, 2, false).unwrap()
}

fn check(v: Option<goals::Verdict>) {
    let v = v.expect("the sweep has the runs this goal needs");
    eprintln!(
        "{}: {} → {}",
        v.goal,
        v.figures,
        if v.holds { "holds" } else { "FAILS" }
    );
    assert!(v.holds, "{}: {}", v.goal, v.figures);
}

#[test]
fn the_default_profile_meets_the_goals() {
    let results = sweep(&[
        (
            "b2b-saas",
            &["random", "precise-oracle", "switchyard"],
            &[60.0],
        ),
        ("no-reuse", &["least-request", "switchyard"], &[30.0, 80.0]),
        (
            "multi-turn",
            &["round-robin", "switchyard"],
            &[40.0, 60.0, 120.0],
        ),
        ("lora-mix", &["least-request", "switchyard"], &[20.0, 60.0]),
    ]);
    check(goals::b2b_saas(&results, 60.0));
    check(goals::no_reuse(&results));
    check(goals::multi_turn(&results));
    check(goals::lora_mix(&results));
}

#[test]
fn the_calibrated_fleet_reproduces_the_published_b2b_saas_runs() {
    // llm-d "KV-cache wins you can see", 8 × Qwen3-32B, b2b-saas at rate 60: random
    // 4,428.7 out tok/s, TTFT p90 92.6 s; precise prefix 8,730 out tok/s, TTFT p90 0.542 s.
    let results = sweep(&[(
        "b2b-saas",
        &["random", "precise-oracle"],
        &[3.0, 30.0, 60.0],
    )]);
    let at = |p: &str, rate: f64| {
        results
            .iter()
            .find(|r| r.policy == p && r.rate == rate)
            .unwrap()
    };
    let (random, oracle) = (at("random", 60.0), at("precise-oracle", 60.0));
    let residual = |ours: f64, published: f64| ours / published - 1.0;
    eprintln!(
        "random {:.0} tok/s ({:+.1} %), TTFT p90 {:.1} s; precise-oracle {:.0} tok/s ({:+.1} %), TTFT p90 {:.3} s",
        random.out_tok_s,
        residual(random.out_tok_s, 4428.7) * 100.0,
        random.ttft_p90_s,
        oracle.out_tok_s,
        residual(oracle.out_tok_s, 8730.0) * 100.0,
        oracle.ttft_p90_s
    );
    assert!(residual(random.out_tok_s, 4428.7).abs() <= 0.15);
    assert!(residual(oracle.out_tok_s, 8730.0).abs() <= 0.15);
    assert!(
        oracle.ttft_p90_s < random.ttft_p90_s / 10.0,
        "published ordering: precise ≪ random"
    );
    // The knee: random stops scaling between 30 and 60 (less than 10 % more for 2× the rate),
    // while below it throughput tracks the rate.
    let r3 = at("random", 3.0);
    let r30 = at("random", 30.0);
    assert!(
        random.out_tok_s < 1.1 * r30.out_tok_s,
        "{} vs {}",
        random.out_tok_s,
        r30.out_tok_s
    );
    assert!(r30.out_tok_s > 7.0 * r3.out_tok_s);
    assert!(r3.ttft_p90_s < 1.0 && random.ttft_p90_s > 20.0);
}
