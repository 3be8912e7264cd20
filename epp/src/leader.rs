//! Active-passive high availability by a `coordination.k8s.io/v1` Lease, as
//! upstream's `--ha-enable-leader-election` does.
//!
//! Every replica serves ext_proc, but only the leader should report ready on
//! the gRPC health service (docs/upstream.md#operations-flags-health-metrics), so the gateway
//! sends traffic to one
//! replica and its in-memory prefix index stays coherent.
//! [`LeaderElection::run`] publishes leadership on a `watch::Sender<bool>`; the
//! server reads the receiver for its readiness.
//!
//! The election is the workspace's one ([`switchyard_runtime::lease`]: expiry
//! judged on the local monotonic clock, each round under a deadline, step-down
//! at the renew deadline, release on shutdown) with upstream's timings; this
//! module adds upstream's Lease name and the EPP's identity.

pub use switchyard_runtime::lease::LeaderElection;

/// The Lease upstream's EPP uses for the pool `pool` in `namespace`.
pub fn lease_name(namespace: &str, pool: &str) -> String {
    format!("epp-{namespace}-{pool}.gateway-api-inference-extension.sigs.k8s.io")
}

/// A replica identity: the pod name (else the host name, else `epp`) plus a
/// random suffix, so a restarted pod never mistakes the previous incarnation's
/// lease for its own.
pub fn default_identity() -> String {
    switchyard_runtime::lease::default_identity("epp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_name_is_upstreams() {
        assert_eq!(
            lease_name("inference", "llama"),
            "epp-inference-llama.gateway-api-inference-extension.sigs.k8s.io"
        );
    }

    #[test]
    fn identities_name_the_replica_and_differ_per_incarnation() {
        let (first, second) = (default_identity(), default_identity());
        assert_ne!(first, second);
        assert!(first.contains('_'), "{first}");
    }
}
