//! Pool membership sources: where the EPP learns which endpoints, objectives
//! and rewrites its pool has.
//!
//! Two sources implement [`PoolSource`]: the Kubernetes watcher (InferencePool,
//! Pods, InferenceObjectives, InferenceModelRewrites) and the standalone YAML
//! file. Each reports the pool's *whole* desired state as a [`PoolState`]; the
//! datastore's owner turns it into a snapshot with [`PoolSnapshot::apply`], so
//! both sources share one merge rule and the request path never sees a source.

pub mod k8s;
pub mod standalone;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use switchyard_api::InferenceModelRewriteSpec;

use crate::datastore::{PodView, PoolSnapshot};
use crate::error::{Error, Result};

/// Everything a source knows about the pool at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolState {
    /// The pool's name.
    pub pool_name: String,
    /// The pool's target ports, in order (an endpoint's rank is its index here).
    pub target_ports: Vec<u16>,
    /// The pods the pool's selector matches (ready or not; readiness is filtered later).
    pub pods: Vec<PodView>,
    /// InferenceObjective name → priority.
    pub objectives: HashMap<String, i64>,
    /// InferenceModelRewrite specs, oldest object first (precedence order).
    pub rewrites: Vec<Arc<InferenceModelRewriteSpec>>,
}

/// A source of [`PoolState`]s.
///
/// `run` publishes every change on `updates` until `shutdown` resolves or the
/// receiver is dropped; it returns an error only when it cannot go on (a
/// transient API error is retried inside, with backoff, and logged).
pub trait PoolSource: Send + 'static {
    /// A short name for logs (`kubernetes`, `file`).
    fn kind(&self) -> &'static str;

    /// Watches the source, sending each new state.
    fn run(
        self,
        updates: tokio::sync::watch::Sender<Arc<PoolState>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<()>> + Send;
}

// === impl PoolSnapshot ===

impl PoolSnapshot {
    /// A new snapshot holding `state`: endpoints rebuilt from its pods (keeping
    /// metrics and load counters of endpoints that stay), objectives and
    /// rewrites replaced. Pods with unusable metadata are skipped and reported.
    pub fn apply(&self, state: &PoolState) -> (Self, Vec<Error>) {
        let (mut next, errors) = self.rebuild(&state.pods, &state.target_ports);
        next.pool_name = state.pool_name.as_str().into();
        next.objectives.clone_from(&state.objectives);
        next.rewrites.clone_from(&state.rewrites);
        (next, errors)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn pod(name: &str, last_octet: u8, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet))),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            ready,
            deleting: false,
        }
    }

    #[test]
    fn apply_keeps_load_counters_of_endpoints_that_stay() {
        let state = PoolState {
            pool_name: "pool".into(),
            target_ports: vec![8000],
            pods: vec![pod("a", 1, true), pod("b", 2, false)],
            objectives: HashMap::from([("chat".to_owned(), 5)]),
            rewrites: Vec::new(),
        };
        let (first, errors) = PoolSnapshot::default().apply(&state);
        assert!(errors.is_empty());
        assert_eq!(&*first.pool_name, "pool");
        assert_eq!(
            first.endpoints.len(),
            1,
            "the unready pod contributes nothing"
        );
        assert_eq!(first.priority(Some("chat")), 5);
        let _held = first.endpoints[0].load.reserve(10);

        let mut grown = state.clone();
        grown.pods[1].ready = true;
        grown.objectives.clear();
        let (second, _) = first.apply(&grown);
        assert_eq!(second.endpoints.len(), 2);
        assert_eq!(
            second.endpoints[0].load.in_flight(),
            1,
            "same counters across snapshots"
        );
        assert_eq!(
            second.priority(Some("chat")),
            0,
            "objectives are replaced, not merged"
        );
    }
}
