//! `switchyard-whatif`: the what-if routing report. `cargo xtask whatif` builds and runs it;
//! see docs/routing.md for what it measures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use switchyard_whatif::workload::{BUILT_IN, WorkloadSpec};
use switchyard_whatif::{Result, policy, report, sweep};

/// Every routing policy over the same simulated fleet, workloads and seeds.
#[derive(Parser, Debug)]
#[command(name = "switchyard-whatif", version)]
struct Args {
    /// A built-in workload (b2b-saas, no-reuse, code-gen, multi-turn, lora-mix) or a
    /// workload YAML file; repeat for several. Default: every built-in workload.
    #[arg(long = "workload")]
    workloads: Vec<String>,
    /// Comma-separated policies, or `all`.
    #[arg(long, default_value = "all")]
    policies: String,
    /// Comma-separated request rates (per second); default: each workload's own `rates`.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Replicas in the simulated fleet.
    #[arg(long, default_value_t = 8)]
    replicas: usize,
    /// Where results.json, report.md and the plots go.
    #[arg(long, default_value = "target/whatif")]
    out: PathBuf,
    /// Runs in parallel; default: the machine's cores.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bars (logs and CI).
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let names: Vec<String> = if args.workloads.is_empty() {
        BUILT_IN.iter().map(|(n, _)| (*n).to_owned()).collect()
    } else {
        args.workloads.clone()
    };
    let workloads = names
        .iter()
        .map(|n| WorkloadSpec::load(n))
        .collect::<Result<Vec<_>>>()?;
    let policies = policy::parse_list(&args.policies)?;
    if args.replicas == 0 || args.replicas > 1024 {
        return Err(switchyard_whatif::Error::Workload(
            "--replicas must be 1–1024".into(),
        ));
    }
    if args.rates.iter().any(|r| !(*r > 0.0 && *r <= 10_000.0)) {
        return Err(switchyard_whatif::Error::Workload(
            "--rates must be numbers in (0, 10000]".into(),
        ));
    }
    let mut points = Vec::new();
    for (w, spec) in workloads.iter().enumerate() {
        let rates = if args.rates.is_empty() {
            &spec.rates
        } else {
            &args.rates
        };
        for policy in &policies {
            for &rate in rates {
                points.push(sweep::Point {
                    workload: w,
                    policy: policy.clone(),
                    rate,
                });
            }
        }
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let started = Instant::now();
    let results = sweep::run_all(
        &workloads,
        &points,
        args.replicas,
        threads,
        !args.no_progress,
    )?;
    let wall = started.elapsed().as_secs_f64();
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    report::write_all(
        &args.out,
        &report::Meta {
            command,
            replicas: args.replicas,
            wall_seconds: wall,
            threads,
            notes: policy::notes(),
        },
        &workloads,
        &results,
    )?;
    println!(
        "{} runs in {wall:.1} s on {threads} threads; wrote {}",
        results.len(),
        args.out.join("report.md").display()
    );
    Ok(())
}
