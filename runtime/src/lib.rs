//! `switchyard-runtime`: the one copy of the shell that `switchyard-bbr`, `switchyard-epp`,
//! `switchyard-rollout` and the simulator share, in the manner of kubert's runtime.
//!
//! Pure modules (no feature, no dependency) can be used from anywhere, including the types
//! crate; the I/O modules sit behind features so a crate compiles only what it serves.

// Pure: no feature, no dependency.
pub mod duration;
pub mod promtext;
// Leader election by Lease (feature `lease`).
#[cfg(feature = "lease")]
pub mod lease;
