//! The EPP's view of its pool as one immutable [`PoolSnapshot`], published
//! through an `ArcSwap` so the request path reads it without a lock.
//!
//! Watchers and scrapers build a new snapshot off the request path (see
//! [`PoolSnapshot::rebuild`] and [`PoolSnapshot::with_metrics`]) and
//! [`Datastore::publish`] it; a request [`Datastore::load`]s once and passes
//! `&PoolSnapshot` down. Per-endpoint load counters live behind an `Arc`
//! that every snapshot containing the endpoint shares.

pub mod endpoint;
pub mod health;
pub mod load;
pub mod snapshot;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use endpoint::{Endpoint, EndpointMetrics, PodView};
pub use health::EndpointHealth;
pub use load::{EndpointLoad, Reservation};
pub use snapshot::{PoolSnapshot, Scrape};

/// Holds the current snapshot.
#[derive(Debug, Default)]
pub struct Datastore {
    current: ArcSwap<PoolSnapshot>,
}

impl Datastore {
    /// An empty pool whose prefix tables will be sized by `sizing`.
    pub fn with_prefix_sizing(sizing: snapshot::PrefixSizing) -> Self {
        Self::new(PoolSnapshot {
            prefix_sizing: sizing,
            ..PoolSnapshot::default()
        })
    }

    /// A datastore publishing `initial`.
    pub fn new(initial: PoolSnapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// The current snapshot; lock-free.
    pub fn load(&self) -> Arc<PoolSnapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot. Callers serialise their writes (one owning task).
    pub fn publish(&self, snapshot: PoolSnapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests;
