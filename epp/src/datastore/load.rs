//! Per-endpoint in-flight accounting with atomics, so picks on the request
//! path reserve load without a lock, and an RAII [`Reservation`] that gives it
//! back when the request completes or its stream is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Load the EPP itself has sent to one endpoint. Shared (through an `Arc`)
/// by every snapshot that contains the endpoint, so it survives rebuilds.
#[derive(Debug, Default)]
pub struct EndpointLoad {
    /// Requests picked for this endpoint and not yet completed.
    in_flight: AtomicU32,
    /// Every request ever picked for this endpoint (monotonic).
    dispatched: AtomicU64,
    /// `dispatched` when the metrics in the current snapshot were scraped:
    /// picks after that are invisible to the scraped queue length.
    dispatched_at_scrape: AtomicU64,
    /// Estimated prompt tokens of the in-flight requests.
    in_flight_tokens: AtomicU64,
}

/// Holds one request's share of an endpoint's load; dropping it releases it.
#[derive(Debug)]
#[must_use = "dropping a reservation releases the load at once"]
pub struct Reservation {
    load: Arc<EndpointLoad>,
    tokens: u64,
}

// === impl EndpointLoad ===

impl EndpointLoad {
    /// Reserves one request of `tokens` estimated prompt tokens.
    pub fn reserve(self: &Arc<Self>, tokens: u64) -> Reservation {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.dispatched.fetch_add(1, Ordering::Relaxed);
        self.in_flight_tokens.fetch_add(tokens, Ordering::Relaxed);
        Reservation {
            load: Arc::clone(self),
            tokens,
        }
    }

    /// Requests picked and not yet completed.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Estimated prompt tokens of the requests in flight.
    pub fn in_flight_tokens(&self) -> u64 {
        self.in_flight_tokens.load(Ordering::Relaxed)
    }

    /// Requests this EPP sent after the last scrape began and that are still
    /// in flight: load the scraped queue cannot show yet. Counting it stops
    /// a burst of picks on one snapshot from herding onto one endpoint.
    pub fn unseen(&self) -> u32 {
        let since = self
            .dispatched
            .load(Ordering::Relaxed)
            .saturating_sub(self.dispatched_at_scrape.load(Ordering::Relaxed));
        u32::try_from(since)
            .unwrap_or(u32::MAX)
            .min(self.in_flight())
    }

    /// Called by the scraper just before it requests `/metrics`.
    pub fn mark_scrape_start(&self) -> u64 {
        self.dispatched.load(Ordering::Relaxed)
    }

    /// Called when the metrics of the scrape that began at `mark` are
    /// published in a snapshot.
    pub fn scrape_published(&self, mark: u64) {
        self.dispatched_at_scrape.fetch_max(mark, Ordering::Relaxed);
    }
}

// === impl Reservation ===

impl Reservation {
    /// The estimated prompt tokens this reservation holds.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // `fetch_update` never underflows even if a counter was somehow reset.
        let _ = self
            .load
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        let tokens = self.tokens;
        let _ =
            self.load
                .in_flight_tokens
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(tokens))
                });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_and_release() {
        let load = Arc::new(EndpointLoad::default());
        let first = load.reserve(100);
        let second = load.reserve(50);
        assert_eq!(
            (load.in_flight(), load.in_flight_tokens(), load.unseen()),
            (2, 150, 2)
        );
        drop(first);
        assert_eq!(
            (load.in_flight(), load.in_flight_tokens(), load.unseen()),
            (1, 50, 1)
        );
        drop(second);
        assert_eq!(
            (load.in_flight(), load.in_flight_tokens(), load.unseen()),
            (0, 0, 0)
        );
    }

    #[test]
    fn scrapes_absorb_earlier_dispatches() {
        let load = Arc::new(EndpointLoad::default());
        let _a = load.reserve(1);
        let mark = load.mark_scrape_start();
        let _b = load.reserve(1);
        assert_eq!(load.unseen(), 2);
        load.scrape_published(mark);
        // `_a` is in the scraped queue now; `_b` was sent after the scrape began.
        assert_eq!(load.unseen(), 1);
        // An older scrape published late does not move the mark back.
        load.scrape_published(0);
        assert_eq!(load.unseen(), 1);
    }
}
