//! What-if routing: every policy, the EPP's own among them, played over the same simulated
//! fleet, workloads and seeds, and the report that compares them.
//!
//! - [`workload`]: the YAML workload schema and the arrivals it generates;
//! - [`policy`]: the routing policies, from `random` to the EPP's shipped profile;
//! - [`sweep`]: one run per workload × policy × rate on the calibrated large profile;
//! - [`report`]: `results.json`, `report.md` and the PNG plots.

pub mod error;
pub mod goals;
pub mod policy;
pub mod report;
pub mod sweep;
pub mod workload;

pub use error::{Error, Result};
