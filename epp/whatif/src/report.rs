//! What a sweep writes: `results.json` (one object per workload × policy × rate),
//! `report.md` (tables, goals, notes) and three PNG plots per workload.

mod plot;

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::goals;
use crate::sweep::RunResult;
use crate::workload::WorkloadSpec;

/// How the sweep was made, for the report's header.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The command line's arguments.
    pub command: String,
    /// Fleet size.
    pub replicas: usize,
    /// Wall time of the sweep.
    pub wall_seconds: f64,
    /// Threads it ran on.
    pub threads: usize,
    /// Caveats about the policies.
    pub notes: Vec<String>,
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::Write(path.display().to_string(), e.to_string()))
}

/// Writes results.json, report.md and the plots under `dir` (created if missing).
pub fn write_all(
    dir: &Path,
    meta: &Meta,
    workloads: &[WorkloadSpec],
    results: &[RunResult],
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Write(dir.display().to_string(), e.to_string()))?;
    let json = serde_json::to_string_pretty(results)
        .map_err(|e| Error::Write("results.json".into(), e.to_string()))?;
    write(&dir.join("results.json"), &json)?;
    for spec in workloads {
        plots(dir, &spec.name, results)?;
    }
    write(&dir.join("report.md"), &markdown(meta, workloads, results))
}

fn policies_of<'a>(results: &'a [RunResult], workload: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for r in results.iter().filter(|r| r.workload == workload) {
        if !out.contains(&r.policy.as_str()) {
            out.push(&r.policy);
        }
    }
    out
}

fn plots(dir: &Path, workload: &str, results: &[RunResult]) -> Result<()> {
    let series = |f: &dyn Fn(&RunResult) -> f64| -> Vec<plot::Series> {
        policies_of(results, workload)
            .into_iter()
            .map(|p| {
                let pts = results
                    .iter()
                    .filter(|r| r.workload == workload && r.policy == p)
                    .map(|r| (r.rate, f(r)))
                    .collect();
                (p.to_owned(), pts)
            })
            .collect()
    };
    plot::lines(
        &dir.join(format!("{workload}-throughput.png")),
        &format!("{workload}: output throughput"),
        "request rate (1/s)",
        "output tokens/s",
        &series(&|r| r.out_tok_s),
    )?;
    plot::lines(
        &dir.join(format!("{workload}-ttft-p90.png")),
        &format!("{workload}: TTFT p90"),
        "request rate (1/s)",
        "TTFT p90 (s)",
        &series(&|r| r.ttft_p90_s),
    )?;
    plot::lines(
        &dir.join(format!("{workload}-hit-rate.png")),
        &format!("{workload}: prefix-cache hit rate"),
        "request rate (1/s)",
        "hit rate",
        &series(&|r| r.hit_rate),
    )
}

/// The report's Markdown.
pub fn markdown(meta: &Meta, workloads: &[WorkloadSpec], results: &[RunResult]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# What-if routing report\n");
    let _ = writeln!(
        md,
        "Made by `cargo xtask whatif {}` ({} replicas of the calibrated large profile, {} runs, {:.0} s on {} threads). Virtual time: the same command gives the same figures.\n",
        meta.command,
        meta.replicas,
        results.len(),
        meta.wall_seconds,
        meta.threads
    );
    let _ = writeln!(md, "## Goals\n");
    let _ = writeln!(md, "| goal | figures | holds |\n|---|---|---|");
    for v in goals::all(results) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            v.goal,
            v.figures,
            if v.holds { "yes" } else { "**no**" }
        );
    }
    for note in &meta.notes {
        let _ = writeln!(md, "\nNote: {note}");
    }
    for spec in workloads {
        let w = spec.name.as_str();
        let _ = writeln!(md, "\n## {w}\n\n{}\n", spec.description);
        let mut rates: Vec<f64> = results
            .iter()
            .filter(|r| r.workload == w)
            .map(|r| r.rate)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        let header: String = rates.iter().map(|r| format!(" {r}/s |")).collect();
        let rule: String = rates.iter().map(|_| "---|").collect();
        let table = |md: &mut String, title: &str, f: &dyn Fn(&RunResult) -> String| {
            let _ = writeln!(md, "{title}\n\n| policy |{header}\n|---|{rule}");
            for p in policies_of(results, w) {
                let _ = write!(md, "| {p} |");
                for rate in &rates {
                    let cell = results
                        .iter()
                        .find(|r| r.workload == w && r.policy == p && r.rate == *rate)
                        .map_or_else(|| "–".to_owned(), f);
                    let _ = write!(md, " {cell} |");
                }
                let _ = writeln!(md);
            }
            let _ = writeln!(md);
        };
        table(&mut md, "Output tokens/s:", &|r| {
            format!("{:.0}", r.out_tok_s)
        });
        table(&mut md, "TTFT p50 / p90 (s):", &|r| {
            format!("{:.2} / {:.2}", r.ttft_p50_s, r.ttft_p90_s)
        });
        table(
            &mut md,
            "Prefix-cache hit rate · preemptions · rejected:",
            &|r| {
                format!(
                    "{:.0} % · {} · {}",
                    r.hit_rate * 100.0,
                    r.preempted,
                    r.rejected
                )
            },
        );
        if !spec.lora.is_empty() {
            table(&mut md, "Adapter loads per 1,000 requests:", &|r| {
                format!("{:.1}", r.adapter_loads_per_1k)
            });
        }
        let _ = writeln!(
            md,
            "![{w} throughput]({w}-throughput.png)\n![{w} TTFT p90]({w}-ttft-p90.png)\n![{w} hit rate]({w}-hit-rate.png)"
        );
    }
    md
}
