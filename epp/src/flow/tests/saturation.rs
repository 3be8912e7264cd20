//! The detectors over real snapshots.

use std::time::Instant;

use super::*;
use crate::datastore::EndpointMetrics;
use crate::datastore::PoolSnapshot;
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
    let later = now + Duration::from_millis(201);
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
