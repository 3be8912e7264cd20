//! The goals, judged from a sweep's results: the report prints them and the CI test
//! asserts them, from the same code.

use crate::sweep::RunResult;

/// One goal's verdict and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What is claimed.
    pub goal: String,
    /// The measured figures, in words.
    pub figures: String,
    /// Whether the claim holds.
    pub holds: bool,
}

fn find<'a>(results: &'a [RunResult], w: &str, p: &str, rate: f64) -> Option<&'a RunResult> {
    results
        .iter()
        .find(|r| r.workload == w && r.policy == p && (r.rate - rate).abs() < 1e-9)
}

fn rates_of(results: &[RunResult], w: &str) -> Vec<f64> {
    let mut rates: Vec<f64> = results
        .iter()
        .filter(|r| r.workload == w)
        .map(|r| r.rate)
        .collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    rates
}

/// The default policy's name.
pub const DEFAULT: &str = "switchyard";

/// b2b-saas at `rate`: switchyard ≥ 2.2 × random throughput, TTFT p90 ≤ 1 s, ≥ 0.95 ×
/// precise-oracle throughput.
pub fn b2b_saas(results: &[RunResult], rate: f64) -> Option<Verdict> {
    let w = "b2b-saas";
    let s = find(results, w, DEFAULT, rate)?;
    let random = find(results, w, "random", rate)?;
    let oracle = find(results, w, "precise-oracle", rate)?;
    let vs_random = s.out_tok_s / random.out_tok_s;
    let vs_oracle = s.out_tok_s / oracle.out_tok_s;
    Some(Verdict {
        goal: format!(
            "b2b-saas at rate {rate}: ≥ 2.2× random, TTFT p90 ≤ 1 s, ≥ 0.95× precise-oracle"
        ),
        figures: format!(
            "{:.0} tok/s = {vs_random:.2}× random ({:.0}), {vs_oracle:.3}× precise-oracle ({:.0}); TTFT p90 {:.3} s",
            s.out_tok_s, random.out_tok_s, oracle.out_tok_s, s.ttft_p90_s
        ),
        holds: vs_random >= 2.2 && s.ttft_p90_s <= 1.0 && vs_oracle >= 0.95,
    })
}

/// no-reuse at every rate: no regression against least-request — switchyard's throughput
/// at least 95 % of least-request's and its TTFT p90 at most 105 % of it (differences under
/// 10 ms, one engine step, count as equal). Doing better is allowed.
pub fn no_reuse(results: &[RunResult]) -> Option<Verdict> {
    let w = "no-reuse";
    let mut worst = (f64::INFINITY, f64::NEG_INFINITY);
    let mut parts = Vec::new();
    let mut holds = true;
    for rate in rates_of(results, w) {
        let (Some(s), Some(lr)) = (
            find(results, w, DEFAULT, rate),
            find(results, w, "least-request", rate),
        ) else {
            continue;
        };
        let thr = s.out_tok_s / lr.out_tok_s - 1.0;
        let ttft = if (s.ttft_p90_s - lr.ttft_p90_s).abs() < 0.010 {
            0.0
        } else {
            s.ttft_p90_s / lr.ttft_p90_s - 1.0
        };
        worst = (worst.0.min(thr), worst.1.max(ttft));
        holds &= thr >= -0.05 && ttft <= 0.05;
        parts.push(format!(
            "rate {rate}: thr {:+.1} %, TTFT p90 {:.3} vs {:.3} s",
            thr * 100.0,
            s.ttft_p90_s,
            lr.ttft_p90_s
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(Verdict {
        goal: "no-reuse: throughput ≥ 95 % and TTFT p90 ≤ 105 % of least-request's at every rate"
            .into(),
        figures: format!(
            "worst throughput {:+.1} %, worst TTFT p90 {:+.1} % ({})",
            worst.0 * 100.0,
            worst.1 * 100.0,
            parts.join("; ")
        ),
        holds,
    })
}

/// TTFT p90 a policy must stay under to be keeping up with a rate (s).
pub const KNEE_TTFT_P90_S: f64 = 2.0;

/// The knee of `policy` on workload `w`: the highest swept rate up to which its TTFT p90
/// stays under [`KNEE_TTFT_P90_S`] (beyond it the queue grows without bound). Throughput
/// "at the knee" is what the policy sustains there, as llm-d reports it.
pub fn knee<'a>(results: &'a [RunResult], w: &str, policy: &str) -> Option<&'a RunResult> {
    let mut last = None;
    for rate in rates_of(results, w) {
        match find(results, w, policy, rate) {
            Some(r) if r.ttft_p90_s <= KNEE_TTFT_P90_S => last = Some(r),
            _ => break,
        }
    }
    last
}

/// multi-turn: switchyard's throughput at its knee ≥ 1.5 × round-robin's at its knee.
pub fn multi_turn(results: &[RunResult]) -> Option<Verdict> {
    let w = "multi-turn";
    let s = knee(results, w, DEFAULT)?;
    let rr = knee(results, w, "round-robin")?;
    let ratio = s.out_tok_s / rr.out_tok_s;
    let top = rates_of(results, w).last().copied().unwrap_or(0.0);
    let open = if (s.rate - top).abs() < 1e-9 {
        " (the sweep's top rate: its knee is at or above)"
    } else {
        ""
    };
    Some(Verdict {
        goal: "multi-turn: throughput at the knee ≥ 1.5× round-robin's".into(),
        figures: format!(
            "switchyard {:.0} tok/s at rate {}{open}, round-robin {:.0} tok/s at rate {} = {ratio:.2}×",
            s.out_tok_s, s.rate, rr.out_tok_s, rr.rate
        ),
        holds: ratio >= 1.5,
    })
}

/// lora-mix at every rate: adapter loads per 1,000 requests ≤ half of least-request's.
pub fn lora_mix(results: &[RunResult]) -> Option<Verdict> {
    let w = "lora-mix";
    let mut parts = Vec::new();
    let mut holds = true;
    for rate in rates_of(results, w) {
        let (Some(s), Some(lr)) = (
            find(results, w, DEFAULT, rate),
            find(results, w, "least-request", rate),
        ) else {
            continue;
        };
        holds &= s.adapter_loads_per_1k <= 0.5 * lr.adapter_loads_per_1k;
        parts.push(format!(
            "rate {rate}: {:.1} vs {:.1}",
            s.adapter_loads_per_1k, lr.adapter_loads_per_1k
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(Verdict {
        goal: "lora-mix: adapter loads per 1,000 requests ≤ ½ of least-request's at every rate"
            .into(),
        figures: parts.join("; "),
        holds,
    })
}

/// Every goal the results allow judging (b2b-saas at its highest swept rate).
pub fn all(results: &[RunResult]) -> Vec<Verdict> {
    let top = rates_of(results, "b2b-saas").last().copied();
    [
        top.and_then(|r| b2b_saas(results, r)),
        no_reuse(results),
        multi_turn(results),
        lora_mix(results),
    ]
    .into_iter()
    .flatten()
    .collect()
}
