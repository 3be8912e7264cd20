//! Where the flow-control actor learns how full the pool is: the [`PoolProbe`] trait and the
//! production [`SnapshotProbe`], which also decides when to fail open on stale metrics (M1).

use std::sync::Arc;
use std::time::Instant;

use crate::datastore::Datastore;
use crate::flow::saturation::{Detector, Pending, PoolView, STALE_FAIL_OPEN_GRACE};

/// Where the actor learns how full the pool is.
pub trait PoolProbe: Send + 'static {
    /// The pool at `now`, counting `pending` unplaced admissions.
    fn observe(&mut self, pending: Pending, now: Instant) -> PoolView;
}

impl<F> PoolProbe for F
where
    F: FnMut(Pending, Instant) -> PoolView + Send + 'static,
{
    fn observe(&mut self, pending: Pending, now: Instant) -> PoolView {
        self(pending, now)
    }
}

/// The production probe: the configured detector over the datastore's
/// current snapshot (an `ArcSwap` load, no lock). Once every endpoint has been
/// stale for [`STALE_FAIL_OPEN_GRACE`] it fails open, reading the last metrics
/// ([`Detector::observe_degraded`]) rather than halting dispatch.
#[derive(Debug)]
pub struct SnapshotProbe {
    datastore: Arc<Datastore>,
    detector: Detector,
    /// Since when every ready endpoint has been stale, if it is now.
    all_stale_since: Option<Instant>,
}

impl SnapshotProbe {
    /// A probe reading `datastore` through `detector`.
    pub fn new(datastore: Arc<Datastore>, detector: Detector) -> Self {
        Self {
            datastore,
            detector,
            all_stale_since: None,
        }
    }
}

impl PoolProbe for SnapshotProbe {
    fn observe(&mut self, pending: Pending, now: Instant) -> PoolView {
        let snapshot = self.datastore.load();
        let view = self.detector.observe(&snapshot, pending, now);
        if view.endpoints == 0 || view.stale < view.endpoints {
            self.all_stale_since = None;
            return view;
        }
        let since = *self.all_stale_since.get_or_insert(now);
        if now.saturating_duration_since(since) < STALE_FAIL_OPEN_GRACE {
            return view;
        }
        self.detector.observe_degraded(&snapshot, pending, now)
    }
}
