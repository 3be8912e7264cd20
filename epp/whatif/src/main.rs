//! `switchyard-whatif`: the what-if routing report (run by `cargo xtask whatif`).

use std::time::Instant;
use switchyard_whatif::sweep::run_one;
use switchyard_whatif::workload::WorkloadSpec;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = WorkloadSpec::load(&args[1]).unwrap();
    let rate: f64 = args[3].parse().unwrap();
    let t = Instant::now();
    let r = run_one(&spec, &args[2], rate, 8, &|| {}).unwrap();
    println!("{r:?} wall {:.2}s", t.elapsed().as_secs_f64());
}
