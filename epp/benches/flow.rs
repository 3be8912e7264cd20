//! Flow-control cost: the pure core's enqueue + dispatch and cancel with a
//! standing backlog, the saturation detector over a pool, and one full
//! admission round trip through the actor (mpsc in, oneshot out).
//!
//! Run: `cargo bench -p switchyard-epp --bench flow`.
//!
//! Medians measured on the 2-core dev VM (Intel Xeon, shared with other
//! builds), 2026-11-21, with usage limits (docs/performance.md has the
//! earlier figures):
//! - `enqueue_and_dispatch` (global-strict / round-robin), backlog
//!   0 / 1,000 / 10,000: 556 / 862 / 1,013 ns and 526 / 784 / 942 ns;
//! - `enqueue_and_dispatch_holdback`: 565 / 817 / 1,008 ns;
//! - `cancel_from_backlog`, backlog 0 / 1,000 / 10,000: 511 / 491 / 728 ns;
//! - `utilization_observe`, 10 / 100 / 1,000 endpoints: 75 ns / 677 ns / 6.8 µs;
//! - `admit_round_trip` (mpsc + actor + oneshot, current-thread runtime),
//!   1 / 100 endpoints: 2.36 / 2.87 µs; with a constant probe: 2.22 µs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use divan::{Bencher, black_box};
use switchyard_epp::datastore::EndpointMetrics;
use switchyard_epp::datastore::{Datastore, Endpoint, PoolSnapshot};
use switchyard_epp::flow::saturation::Pending;
use switchyard_epp::flow::{
    Detector, DetectorConfig, Fairness, FlowControlConfig, FlowController, FlowMetrics, FlowQueues,
    FlowRequest, PoolState, PoolView, SnapshotProbe, UsageLimitPolicy,
};

fn main() {
    divan::main();
}

const OPEN: PoolState = PoolState {
    saturation: 0.0,
    has_endpoints: true,
};

/// Standing backlogs: empty, typical, deep.
const BACKLOG: [usize; 3] = [0, 1_000, 10_000];

fn config(fairness: Fairness) -> Arc<FlowControlConfig> {
    let mut config = FlowControlConfig {
        enabled: true,
        ..FlowControlConfig::default()
    };
    config.default_band.fairness = fairness;
    config.default_band.max_requests = 0;
    Arc::new(config)
}

fn request(i: usize) -> FlowRequest {
    FlowRequest {
        fairness_id: format!("tenant-{}", i % 16),
        priority: [1, 0, 0, -1][i % 4],
        byte_size: 2048,
        ttl: None,
    }
}

/// Queues with `backlog` requests over 16 flows and 3 bands.
fn backlogged(fairness: Fairness, backlog: usize, now: Instant) -> FlowQueues<()> {
    let mut queues = FlowQueues::new(config(fairness));
    for i in 0..backlog {
        let _ = queues.enqueue(i as u64, request(i), (), now, OPEN);
    }
    queues
}

/// One enqueue and one dispatch with a standing backlog.
#[divan::bench(args = BACKLOG, consts = [0, 1])]
fn enqueue_and_dispatch<const ROUND_ROBIN: usize>(bencher: Bencher, backlog: usize) {
    let fairness = if ROUND_ROBIN == 1 {
        Fairness::RoundRobin
    } else {
        Fairness::GlobalStrict
    };
    let now = Instant::now();
    let mut queues = backlogged(fairness, backlog, now);
    let mut id = backlog as u64;
    let requests: Vec<FlowRequest> = (0..64).map(request).collect();
    bencher.bench_local(|| {
        id += 1;
        let request = requests[id as usize % requests.len()].clone();
        let _ = queues.enqueue(id, request, (), now, OPEN);
        black_box(queues.pop_next())
    });
}

/// The same through the dispatch rule under `priority-holdback-policy` (rank
/// spread, ceilings 1.0 / 0.75 / 0.5 over the three bands), at a saturation
/// below every ceiling: the cost of looking up the head band's ceiling.
#[divan::bench(args = BACKLOG)]
fn enqueue_and_dispatch_holdback(bencher: Bencher, backlog: usize) {
    let now = Instant::now();
    let mut config = (*config(Fairness::GlobalStrict)).clone();
    config.usage_limit = UsageLimitPolicy::Spread {
        by_value: false,
        min_ceiling: 0.5,
        max_ceiling: 1.0,
    };
    let mut queues = FlowQueues::new(Arc::new(config));
    for i in 0..backlog {
        let _ = queues.enqueue(i as u64, request(i), (), now, OPEN);
    }
    let mut id = backlog as u64;
    let requests: Vec<FlowRequest> = (0..64).map(request).collect();
    bencher.bench_local(|| {
        id += 1;
        let request = requests[id as usize % requests.len()].clone();
        let _ = queues.enqueue(id, request, (), now, OPEN);
        black_box(queues.pop_dispatchable(0.4))
    });
}

/// Withdrawing a request from the middle of a backlog (client disconnect).
#[divan::bench(args = BACKLOG)]
fn cancel_from_backlog(bencher: Bencher, backlog: usize) {
    let now = Instant::now();
    let mut queues = backlogged(Fairness::GlobalStrict, backlog, now);
    let mut id = backlog as u64;
    bencher.bench_local(|| {
        id += 1;
        let _ = queues.enqueue(id, request(id as usize), (), now, OPEN);
        black_box(queues.cancel(id))
    });
}

fn pool(n: usize) -> PoolSnapshot {
    let now = Instant::now();
    let endpoints = (0..n)
        .map(|i| {
            let address = std::net::SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 8000));
            let mut e = Endpoint::new(&format!("p{i}-rank-0"), &format!("p{i}"), address);
            e.metrics = EndpointMetrics {
                waiting_queue: (i % 4) as u32,
                kv_cache_usage: (i % 10) as f64 / 20.0,
                ..EndpointMetrics::default()
            };
            e.scraped_at = Some(now);
            e
        })
        .collect();
    PoolSnapshot {
        endpoints,
        ..PoolSnapshot::default()
    }
}

/// One utilization-detector observation (done after every dispatch).
#[divan::bench(args = [10, 100, 1000])]
fn utilization_observe(bencher: Bencher, endpoints: usize) {
    let snapshot = pool(endpoints);
    let detector = Detector::new(DetectorConfig::default());
    let now = Instant::now();
    bencher.bench_local(|| black_box(detector.observe(&snapshot, Pending::default(), now)));
}

/// One admission through the actor on a pool with room: the added latency
/// a request sees when nothing is queued.
#[divan::bench(args = [1, 100])]
fn admit_round_trip(bencher: Bencher, endpoints: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let config = config(Fairness::GlobalStrict);
    let (controller, _actor) = runtime.block_on(async {
        let datastore = Arc::new(Datastore::new(pool(endpoints)));
        // Staleness far away: the bench measures the path, not the clock.
        let detector = Detector::new(DetectorConfig::Utilization {
            queue_depth: 5.0,
            kv_cache: 0.8,
            staleness: Duration::from_secs(3600),
        });
        FlowController::spawn(
            Arc::clone(&config),
            SnapshotProbe::new(datastore, detector),
            Arc::new(FlowMetrics::default()),
        )
    });
    let mut i = 0;
    bencher.bench_local(|| {
        i += 1;
        let admission = runtime.block_on(controller.admit(FlowRequest {
            priority: 0,
            ..request(i)
        }));
        black_box(admission.is_ok())
    });
}

/// The same round trip with a trivial probe: the actor and channel cost alone.
#[divan::bench]
fn admit_round_trip_channel_only(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let (controller, _actor) = runtime.block_on(async {
        let probe = |_: Pending, _: Instant| PoolView {
            saturation: 0.0,
            endpoints: 1,
            stale: 0,
            degraded: false,
        };
        FlowController::spawn(
            config(Fairness::GlobalStrict),
            probe,
            Arc::new(FlowMetrics::default()),
        )
    });
    let mut i = 0;
    bencher.bench_local(|| {
        i += 1;
        black_box(runtime.block_on(controller.admit(request(i))).is_ok())
    });
}
