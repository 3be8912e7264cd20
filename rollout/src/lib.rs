//! Rollout controller: metric-gated canary weights on HTTPRoutes.
//!
//! Layers, pure first:
//! - [`plan`]: `plan(spec, status, observations) → Decision`, every transition,
//!   no I/O;
//! - [`judge`]: one analysis window's verdicts from measurements;
//! - [`route`]: finding the two backendRefs in an HTTPRoute and the guarded
//!   JSON Patch that moves only their weights;
//! - [`epp`]: the EPP source (each arm's picker scraped directly, windows
//!   from counter increases);
//! - [`prometheus`]: the PromQL source (instant queries over HTTP);
//! - [`conflict`]: which rollout owns a route rule when several target it;
//! - [`controller`]: the kube-rs shell that reads, plans and writes;
//! - [`admin`]: the admin HTTP API (axum) recording actions on the CR;
//! - [`lease`]: leader election with a Lease;
//! - [`local`]: local mode's files: rollouts and routes from a manifest
//!   directory, weights rewritten in place, status in a file;
//! - [`metrics`]: the controller's own Prometheus metrics;
//! - [`webhook`]: the validating admission webhook (the checker's rules at the
//!   API server).

pub mod admin;
pub mod cli;
pub mod conflict;
pub mod controller;
pub mod epp;
pub mod error;
pub mod https;
pub mod judge;
pub mod lease;
pub mod local;
pub mod metrics;
pub mod plan;
pub mod prometheus;
pub mod rewrite;
pub mod route;
pub mod webhook;

pub use error::{Error, Result};
