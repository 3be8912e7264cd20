//! Calibration of the engine model in virtual time (deterministic, no wall clock).
//!
//! Targets (reference §3.3): an idle small-model replica gives TTFT ≈ 30 ms + 0.25 ms per
//! uncached prompt token and ITL ≈ 12 ms, rising about 2× at a full batch; a repeated
//! prefix cuts TTFT; overload grows the waiting queue; KV pressure causes counted
//! preemptions; a request for an unloaded adapter waits for a slot.
#![allow(clippy::unwrap_used)]

use switchyard_sim::engine::{EngineConfig, Profile};
use switchyard_sim::fleet::{
    Arrival, Fleet, FleetConfig, FleetReport, RequestStatus, RoundRobin, synthetic_tokens,
};

const FOREVER: u64 = u64::MAX;

fn run_one(cfg: EngineConfig, arrivals: impl FnOnce(&Fleet) -> Vec<Arrival>) -> FleetReport {
    let mut fleet = Fleet::new(FleetConfig::new(1, cfg));
    let a = arrivals(&fleet);
    fleet.run(a, &mut RoundRobin::default(), FOREVER)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[test]
fn idle_small_replica_ttft_is_30ms_plus_quarter_ms_per_token_and_itl_12ms() {
    for prompt in [100usize, 400, 1600] {
        let report = run_one(Profile::Small.config(), |f| {
            vec![Arrival::from_tokens(
                0,
                &synthetic_tokens(prompt as u64, prompt),
                50,
                &f.hasher(),
            )]
        });
        let r = &report.results[0];
        assert_eq!(r.status, RequestStatus::Completed);
        let ttft = ms(r.ttft_us.unwrap());
        let expected = 30.0 + 0.25 * prompt as f64;
        assert!(
            (ttft - expected).abs() / expected < 0.02,
            "prompt {prompt}: TTFT {ttft} ms, want {expected}"
        );
        let itl = r.itl_mean_us.unwrap() / 1000.0;
        assert!((itl - 12.0).abs() < 0.5, "ITL {itl} ms");
        eprintln!(
            "idle small: prompt {prompt} → TTFT {ttft:.1} ms (model {expected:.1}), ITL {itl:.2} ms"
        );
    }
}

#[test]
fn inter_token_latency_doubles_at_a_full_batch() {
    let cfg = Profile::Small.config();
    let seats = cfg.max_num_seqs;
    let report = run_one(cfg, |f| {
        (0..seats)
            .map(|i| Arrival::from_tokens(0, &synthetic_tokens(i as u64, 8), 200, &f.hasher()))
            .collect()
    });
    assert_eq!(report.replicas[0].max_running, seats);
    let mut itls: Vec<f64> = report
        .results
        .iter()
        .map(|r| r.itl_mean_us.unwrap() / 1000.0)
        .collect();
    let median = switchyard_sim::fleet::percentile(&mut itls, 50.0).unwrap();
    let ratio = median / 12.0;
    eprintln!("full batch of {seats}: ITL {median:.2} ms = {ratio:.2}× idle");
    assert!((1.8..2.2).contains(&ratio), "ITL at full batch {median} ms");
}

#[test]
fn repeated_prefix_cuts_ttft() {
    let tokens = synthetic_tokens(7, 2000);
    let mut second = tokens[..1900].to_vec();
    second.extend(synthetic_tokens(8, 100));
    let report = run_one(Profile::Small.config(), |f| {
        vec![
            Arrival::from_tokens(0, &tokens, 10, &f.hasher()),
            // Long after the first finished: its blocks are free but still cached.
            Arrival::from_tokens(10_000_000, &second, 10, &f.hasher()),
        ]
    });
    let (cold, warm) = (&report.results[0], &report.results[1]);
    assert_eq!(cold.cached_tokens, 0);
    assert_eq!(
        warm.cached_tokens, 1888,
        "whole 16-token blocks of the shared 1,900"
    );
    let (c, w) = (ms(cold.ttft_us.unwrap()), ms(warm.ttft_us.unwrap()));
    // 112 uncached tokens: 30 + 28 ms instead of 2 chunks of 2,048-token prefill.
    assert!((w - (30.0 + 0.25 * 112.0)).abs() < 1.0, "warm TTFT {w}");
    assert!(w * 5.0 < c, "cold {c} ms vs warm {w} ms");
    assert!((report.hit_rate() - 1888.0 / 4000.0).abs() < 1e-9);
    eprintln!("prefix reuse: cold TTFT {c:.1} ms, warm TTFT {w:.1} ms (1,888 cached tokens)");
}

#[test]
fn overload_grows_the_waiting_queue() {
    let mut cfg = Profile::Small.config();
    cfg.max_num_seqs = 8;
    // 20 req/s of 200-token prompts and 100-token answers against ~8 seats of ~1.3 s each.
    let report = run_one(cfg, |f| {
        (0..400u64)
            .map(|i| Arrival::from_tokens(i * 50_000, &synthetic_tokens(i, 200), 100, &f.hasher()))
            .collect()
    });
    let samples = &report.replicas[0].samples;
    let at = |s: u64| {
        samples
            .iter()
            .find(|x| x.at == s * 1_000_000)
            .unwrap()
            .waiting
    };
    let (w5, w10, w15) = (at(5), at(10), at(15));
    eprintln!("overload: waiting at 5 s {w5}, 10 s {w10}, 15 s {w15}");
    assert!(w5 < w10 && w10 < w15, "{w5} {w10} {w15}");
    assert!(w15 > 100);
    assert!(samples.iter().all(|s| s.running <= 8));
    assert_eq!(report.completed().count(), 400, "all served eventually");
}

#[test]
fn waiting_queue_cap_rejects_with_429() {
    let mut cfg = Profile::Small.config();
    cfg.max_num_seqs = 1;
    cfg.max_waiting = 5;
    let report = run_one(cfg, |f| {
        (0..20u64)
            .map(|i| Arrival::from_tokens(0, &synthetic_tokens(i, 50), 10, &f.hasher()))
            .collect()
    });
    // The first is admitted at its step; of the rest, 5 fit in the queue at t=0.
    assert_eq!(report.rejected(), 14);
    assert!(
        report
            .results
            .iter()
            .any(|r| r.status == RequestStatus::Rejected(429))
    );
}

#[test]
fn kv_pressure_causes_counted_preemptions() {
    let mut cfg = Profile::Small.config();
    cfg.num_gpu_blocks = 200; // 3,200 tokens
    cfg.max_num_seqs = 16;
    // 16 requests of 100 + 300 tokens want 6,400 tokens of KV once they all decode.
    let report = run_one(cfg, |f| {
        (0..16u64)
            .map(|i| Arrival::from_tokens(0, &synthetic_tokens(i, 100), 300, &f.hasher()))
            .collect()
    });
    let counted = report.preemptions();
    let per_request: u64 = report
        .results
        .iter()
        .map(|r| u64::from(r.preemptions))
        .sum();
    eprintln!("KV pressure: {counted} preemptions");
    assert!(counted > 0);
    assert_eq!(counted, per_request);
    assert_eq!(report.completed().count(), 16);
    assert!(report.results.iter().all(|r| r.output_tokens == 300));
    // The oldest request is never the victim.
    assert_eq!(report.results[0].preemptions, 0);
}

#[test]
fn unloaded_adapter_waits_for_a_slot() {
    let mut cfg = Profile::Small.config();
    cfg.max_loras = 1;
    let mut fc = FleetConfig::new(1, cfg);
    fc.adapters = vec!["tenant-a".into(), "tenant-b".into()];
    let mut fleet = Fleet::new(fc);
    let h = fleet.hasher();
    let p = synthetic_tokens(1, 64);
    let arrivals = vec![
        Arrival::from_tokens(0, &p, 100, &h).with_lora("tenant-a", &p, &h),
        Arrival::from_tokens(1_000, &p, 10, &h).with_lora("tenant-b", &p, &h),
        Arrival::from_tokens(2_000, &p, 10, &h),
    ];
    let report = fleet.run(arrivals, &mut RoundRobin::default(), FOREVER);
    let (a, b, base) = (&report.results[0], &report.results[1], &report.results[2]);
    let a_end = a.arrival_us + a.e2e_us.unwrap();
    let b_start = b.arrival_us + b.queue_us.unwrap();
    assert!(
        b_start >= a_end,
        "b scheduled at {b_start} before a finished at {a_end}"
    );
    // Two adapters through one slot: each loaded once, counted.
    assert_eq!(report.replicas[0].lora_loads, 2);
    // The base-model request is not stuck behind the adapter queue.
    assert!(base.e2e_us.unwrap() < a.e2e_us.unwrap());
    // Loading the adapter costs 30 ms on top of the 30 ms + 16 ms prefill.
    assert!(
        (ms(a.ttft_us.unwrap()) - (30.0 + 16.0 + 30.0)).abs() < 0.5,
        "{:?}",
        a.ttft_us
    );
    eprintln!(
        "LoRA: tenant-b waited {:.0} ms for tenant-a's slot",
        ms(b.queue_us.unwrap())
    );
}

#[test]
fn runs_are_deterministic() {
    let go = || {
        run_one(Profile::Large.config(), |f| {
            (0..50u64)
                .map(|i| {
                    Arrival::from_tokens(
                        i * 20_000,
                        &synthetic_tokens(i % 5, 3000),
                        50,
                        &f.hasher(),
                    )
                })
                .collect()
        })
    };
    assert_eq!(go(), go());
}
