//! The detectors over real snapshots.

use std::time::Instant;

use super::*;
use crate::datastore::EndpointMetrics;
use crate::datastore::PoolSnapshot;
use crate::flow::config::DEFAULT_METRICS_STALENESS;
use crate::flow::saturation::Pending;
use crate::scheduling::tests::pool;

fn metrics(queue: u32, kv: f64) -> EndpointMetrics {
    EndpointMetrics {
        waiting_queue: queue,
        kv_cache_usage: kv,
        ..EndpointMetrics::default()
    }
}

/// A pool whose endpoints were all scraped at `at`.
fn scraped(all: &[EndpointMetrics], at: Instant) -> PoolSnapshot {
    let mut snapshot = pool(all);
    for e in &mut snapshot.endpoints {
        e.scraped_at = Some(at);
    }
    snapshot
}

fn utilization() -> Detector {
    Detector::new(DetectorConfig::default())
}

#[test]
fn utilization_is_the_mean_of_queue_or_kv_pressure() {
    let now = Instant::now();
    let snapshot = scraped(&[metrics(5, 0.0), metrics(0, 0.4)], now);
    let view = utilization().observe(&snapshot, Pending::default(), now);
    // max(5/5, 0) = 1 and max(0, 0.4/0.8) = 0.5 → mean 0.75.
    assert!((view.saturation - 0.75).abs() < 1e-9, "{view:?}");
    assert_eq!((view.endpoints, view.stale), (2, 0));
    assert!(!view.state().saturated());
    let hot = scraped(&[metrics(10, 0.0), metrics(0, 0.8)], now);
    let view = utilization().observe(&hot, Pending::default(), now);
    assert!(view.state().saturated(), "{view:?}");
}

#[test]
fn stale_or_unscraped_endpoints_count_as_saturated_and_are_reported() {
    let now = Instant::now();
    let mut snapshot = scraped(&[metrics(0, 0.0), metrics(0, 0.0)], now);
    snapshot.endpoints[1].scraped_at = None;
    let view = utilization().observe(&snapshot, Pending::default(), now);
    assert_eq!((view.saturation, view.stale), (0.5, 1));
    let later = now + DEFAULT_METRICS_STALENESS + Duration::from_millis(1);
    let view = utilization().observe(&snapshot, Pending::default(), later);
    assert_eq!(
        (view.saturation, view.stale, view.state().saturated()),
        (1.0, 2, true)
    );
}

#[test]
fn unseen_dispatches_and_pending_admissions_count_as_queued() {
    let now = Instant::now();
    let snapshot = scraped(&[metrics(0, 0.0), metrics(0, 0.0)], now);
    let _held: Vec<_> = (0..5)
        .map(|_| snapshot.endpoints[0].load.reserve(10))
        .collect();
    let view = utilization().observe(&snapshot, Pending::default(), now);
    assert!(
        (view.saturation - 0.5).abs() < 1e-9,
        "5 unseen on one of two endpoints: {view:?}"
    );
    let pending = Pending {
        requests: 5,
        tokens: 0,
    };
    let view = utilization().observe(&snapshot, pending, now);
    assert!(
        (view.saturation - 1.0).abs() < 1e-9,
        "5 pending spread over 2 endpoints: {view:?}"
    );
}

#[test]
fn an_empty_pool_is_saturated_without_endpoints() {
    let view = utilization().observe(&PoolSnapshot::default(), Pending::default(), Instant::now());
    assert_eq!(view.state(), EMPTY);
    let mut unready = pool(&[metrics(0, 0.0)]);
    unready.endpoints[0].ready = false;
    let view = utilization().observe(&unready, Pending::default(), Instant::now());
    assert_eq!(view.endpoints, 0);
}

#[test]
fn concurrency_counts_in_flight_requests_or_tokens() {
    let now = Instant::now();
    let snapshot = pool(&[metrics(99, 1.0), metrics(99, 1.0)]);
    let requests = Detector::new(DetectorConfig::Concurrency {
        tokens: false,
        max_concurrency: 2,
        max_token_concurrency: 1,
    });
    assert_eq!(
        requests
            .observe(&snapshot, Pending::default(), now)
            .saturation,
        0.0,
        "scraped metrics are not used"
    );
    let _a = snapshot.endpoints[0].load.reserve(1000);
    let _b = snapshot.endpoints[1].load.reserve(1000);
    assert_eq!(
        requests
            .observe(&snapshot, Pending::default(), now)
            .saturation,
        0.5
    );
    let pending = Pending {
        requests: 2,
        tokens: 400,
    };
    assert!(
        requests
            .observe(&snapshot, pending, now)
            .state()
            .saturated()
    );

    let tokens = Detector::new(DetectorConfig::Concurrency {
        tokens: true,
        max_concurrency: 1,
        max_token_concurrency: 2000,
    });
    assert_eq!(
        tokens.observe(&snapshot, pending, now).saturation,
        2400.0 / 4000.0
    );
}

#[test]
fn m1_default_staleness_outlasts_two_scrape_timeouts() {
    assert!(DEFAULT_METRICS_STALENESS >= 2 * crate::scrape::DEFAULT_TIMEOUT);
    // A scrape that took nearly its whole timeout is not stale the moment it lands.
    let now = Instant::now();
    let snapshot = scraped(&[metrics(0, 0.0)], now);
    let slow = now + crate::scrape::DEFAULT_TIMEOUT;
    let view = utilization().observe(&snapshot, Pending::default(), slow);
    assert_eq!(view.stale, 0, "{view:?}");
}

#[test]
fn m1_an_all_stale_pool_fails_open_after_the_grace_period() {
    use crate::flow::saturation::STALE_FAIL_OPEN_GRACE;
    use crate::flow::{PoolProbe, SnapshotProbe};

    let start = Instant::now();
    // Last scraped long ago, lightly loaded; one endpoint never scraped at all.
    let mut snapshot = scraped(&[metrics(1, 0.2), metrics(0, 0.0)], start);
    snapshot.endpoints[1].scraped_at = None;
    let datastore = Arc::new(crate::datastore::Datastore::new(snapshot));
    let mut probe = SnapshotProbe::new(Arc::clone(&datastore), utilization());
    let stale_from = start + DEFAULT_METRICS_STALENESS + Duration::from_millis(1);
    let view = probe.observe(Pending::default(), stale_from);
    assert!(view.state().saturated() && !view.degraded, "{view:?}");
    let within = probe.observe(Pending::default(), stale_from + STALE_FAIL_OPEN_GRACE / 2);
    assert!(within.state().saturated() && !within.degraded, "{within:?}");
    let after = probe.observe(Pending::default(), stale_from + STALE_FAIL_OPEN_GRACE);
    assert!(after.degraded, "{after:?}");
    assert_eq!(after.stale, 2);
    // The last metrics: max(1/5, 0.2/0.8) = 0.25 and 0 → mean 0.125.
    assert!((after.saturation - 0.125).abs() < 1e-9, "{after:?}");
    // Fresh metrics end the degraded reading and reset the grace.
    let fresh_at = stale_from + STALE_FAIL_OPEN_GRACE + Duration::from_secs(1);
    let fresh = scraped(&[metrics(1, 0.2), metrics(0, 0.0)], fresh_at);
    datastore.publish(fresh);
    let view = probe.observe(Pending::default(), fresh_at);
    assert!(!view.degraded && view.stale == 0, "{view:?}");
}
