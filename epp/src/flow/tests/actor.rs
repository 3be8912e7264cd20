//! The actor under tokio's paused clock, over a real datastore: the
//! concurrency detector reads the endpoints' in-flight reservations, so
//! "capacity frees" is a reservation being dropped, as in production.

use std::sync::atomic::Ordering as AtomicOrdering;

use tokio::task::JoinHandle;

use super::*;
use crate::datastore::EndpointMetrics;
use crate::datastore::{Datastore, PoolSnapshot, Reservation};
use crate::scheduling::tests::pool;

struct Harness {
    controller: FlowController,
    datastore: Arc<Datastore>,
    actor: JoinHandle<()>,
}

/// One endpoint that takes `capacity` requests at a time.
fn harness(capacity: u64, edit: impl FnOnce(&mut FlowControlConfig)) -> Harness {
    let config = config(|c| {
        c.detector = DetectorConfig::Concurrency {
            tokens: false,
            max_concurrency: capacity,
            max_token_concurrency: 1,
        };
        edit(c);
    });
    let datastore = Arc::new(Datastore::new(pool(&[EndpointMetrics::default()])));
    let probe = SnapshotProbe::new(
        Arc::clone(&datastore),
        Detector::new(config.detector.clone()),
    );
    let (controller, actor) = FlowController::spawn(config, probe, Arc::default());
    Harness {
        controller,
        datastore,
        actor,
    }
}

impl Harness {
    /// What the scheduler does with an admission: reserve the endpoint,
    /// then let the admission go.
    fn schedule(&self, admission: Admission) -> Reservation {
        let reservation = self.datastore.load().endpoints[0].load.reserve(0);
        drop(admission);
        reservation
    }

    fn spawn_admit(&self, flow: &str, priority: i64) -> JoinHandle<Result<Admission, Rejection>> {
        tokio::spawn(self.controller.admit(request(flow, priority, 100)))
    }

    fn count(&self, outcome: Outcome) -> u64 {
        self.controller.metrics().count(outcome)
    }

    fn queued(&self) -> u64 {
        self.controller
            .metrics()
            .queue_size
            .load(AtomicOrdering::Relaxed)
    }
}

/// Lets the actor and spawned tasks run until they are all idle.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

async fn finished<T>(task: JoinHandle<T>) -> T {
    task.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn admits_at_once_while_the_pool_has_room() {
    let h = harness(4, |_| {});
    let admission = h.controller.admit(request("a", 0, 10)).await.unwrap();
    assert_eq!((admission.priority(), admission.fairness_id()), (0, "a"));
    assert_eq!(admission.waited(), Duration::ZERO);
    assert_eq!(h.count(Outcome::Dispatched), 1);
}

#[tokio::test(start_paused = true)]
async fn queues_while_saturated_then_dispatches_by_priority() {
    let h = harness(1, |_| {});
    let first = h.controller.admit(request("a", 0, 10)).await.unwrap();
    let busy = h.schedule(first);

    let low = h.spawn_admit("a", 0);
    settle().await;
    let high = h.spawn_admit("b", 5);
    let shed = h.spawn_admit("c", -1);
    settle().await;
    let shed = finished(shed).await.unwrap_err();
    assert_eq!(
        (shed.status(), shed.dropped_reason()),
        (429, "rejected-saturated")
    );
    assert!(!low.is_finished() && !high.is_finished());
    assert_eq!(h.queued(), 2);

    tokio::time::advance(Duration::from_secs(3)).await;
    drop(busy); // the running request completes
    let high = finished(high).await.unwrap();
    assert_eq!(high.priority(), 5, "the higher band goes first");
    assert!(high.waited() >= Duration::from_secs(3));
    let busy = h.schedule(high);
    settle().await;
    assert!(
        !low.is_finished(),
        "one slot, taken by the high-priority request"
    );
    drop(busy);
    assert_eq!(finished(low).await.unwrap().priority(), 0);
    assert_eq!(h.count(Outcome::Dispatched), 3);
    assert_eq!(h.count(Outcome::RejectedSaturated), 1);
}

/// With `priority-holdback-policy`, a lower band stops at its ceiling and the
/// capacity above it stays free: priority 1 dispatches at once while
/// priority 0 waits, and sheddable work is refused at its own ceiling.
#[tokio::test(start_paused = true)]
async fn holdback_keeps_headroom_for_the_highest_band() {
    let h = harness(4, |c| {
        c.usage_limit = crate::flow::UsageLimitPolicy::Explicit(
            [(1, 1.0), (0, 0.5), (-1, 0.25)].into_iter().collect(),
        );
    });
    let mut busy = Vec::new();
    for _ in 0..2 {
        busy.push(h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap()));
    }
    // Saturation 2/4 = 0.5: priority 0 is held back, sheddable refused.
    let low = h.spawn_admit("a", 0);
    let shed = h.spawn_admit("c", -1);
    settle().await;
    assert!(!low.is_finished(), "priority 0 waits at its ceiling");
    assert_eq!(
        finished(shed).await.unwrap_err().dropped_reason(),
        "rejected-saturated"
    );
    // Priority 1 goes straight past the waiting priority-0 request, twice.
    for _ in 0..2 {
        let high = h.controller.admit(request("b", 1, 10)).await.unwrap();
        assert_eq!((high.priority(), high.waited()), (1, Duration::ZERO));
        busy.push(h.schedule(high));
    }
    // The pool is full now; freeing three slots brings saturation to 0.25.
    busy.truncate(1);
    assert_eq!(finished(low).await.unwrap().priority(), 0);
    assert_eq!(h.count(Outcome::Dispatched), 5);
    assert_eq!(h.count(Outcome::RejectedSaturated), 1);
}

#[tokio::test(start_paused = true)]
async fn admitted_but_unscheduled_work_counts_against_capacity() {
    let h = harness(1, |_| {});
    let held = h.controller.admit(request("a", 0, 10)).await.unwrap();
    let next = h.spawn_admit("a", 0);
    settle().await;
    assert!(!next.is_finished(), "the first admission is pending load");
    drop(held); // e.g. the scheduler failed and no reservation was made
    drop(finished(next).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn waiting_past_the_ttl_gives_429_ttl_expired() {
    let h = harness(1, |c| c.default_request_ttl = Some(secs(30)));
    let _busy = h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap());
    let started = tokio::time::Instant::now();
    let rejection = h.controller.admit(request("a", 0, 10)).await.unwrap_err();
    assert_eq!(started.elapsed(), secs(30), "expires exactly at its TTL");
    assert_eq!(
        (rejection.status(), rejection.dropped_reason()),
        (429, "rejected-ttl-expired")
    );
    assert_eq!(rejection.waited, secs(30));
    assert_eq!(h.count(Outcome::EvictedTtl), 1);
    assert_eq!(h.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_per_request_ttl_shortens_the_wait() {
    let h = harness(1, |_| {});
    let _busy = h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap());
    let started = tokio::time::Instant::now();
    let short = FlowRequest {
        ttl: Some(Duration::from_millis(1500)),
        ..request("a", 0, 10)
    };
    h.controller.admit(short).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn without_endpoints_requests_wait_the_no_endpoint_ttl_then_get_503() {
    let h = harness(1, |c| c.no_endpoint_request_ttl = Some(secs(5)));
    h.datastore.publish(PoolSnapshot::default());
    let shed = h.controller.admit(request("a", -1, 10)).await.unwrap_err();
    assert_eq!(
        (shed.status(), shed.dropped_reason()),
        (503, "rejected-no-endpoints")
    );
    let started = tokio::time::Instant::now();
    let waited = h.controller.admit(request("a", 0, 10)).await.unwrap_err();
    assert_eq!(started.elapsed(), secs(5));
    assert_eq!(
        (waited.status(), waited.dropped_reason()),
        (503, "rejected-no-endpoints")
    );
    assert_eq!(h.count(Outcome::EvictedNoEndpoints), 1);
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_appearing_releases_the_waiting_room() {
    let h = harness(1, |_| {});
    let snapshot = h.datastore.load();
    h.datastore.publish(PoolSnapshot::default());
    let waiting = h.spawn_admit("a", 0);
    settle().await;
    tokio::time::advance(secs(2)).await;
    assert!(!waiting.is_finished());
    h.datastore.publish((*snapshot).clone());
    let admission = finished(waiting).await.unwrap();
    assert!(admission.waited() >= secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_admit_leaves_the_queue_at_once() {
    let h = harness(1, |c| {
        c.bands.insert(
            0,
            BandConfig {
                max_requests: 1,
                ..BandConfig::default()
            },
        );
    });
    let _busy = h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap());
    let leaving = h.spawn_admit("a", 0);
    settle().await;
    assert_eq!(h.queued(), 1);
    let refused = h.controller.admit(request("a", 0, 10)).await.unwrap_err();
    assert_eq!(
        refused.outcome,
        Outcome::RejectedCapacity,
        "the band holds one"
    );

    leaving.abort(); // the client disconnects: its future is dropped
    settle().await;
    assert_eq!(h.count(Outcome::EvictedContextCancelled), 1);
    assert_eq!(h.queued(), 0);
    let replacement = h.spawn_admit("a", 0);
    settle().await;
    assert!(
        !replacement.is_finished(),
        "queued in the freed slot, not refused"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_answers_everyone_with_503_shutting_down() {
    let h = harness(1, |_| {});
    let _busy = h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap());
    let queued = h.spawn_admit("a", 0);
    settle().await;
    h.controller.shutdown();
    let rejection = finished(queued).await.unwrap_err();
    assert_eq!(
        (rejection.status(), rejection.dropped_reason()),
        (503, "rejected-shutting-down")
    );
    assert_eq!(rejection.outcome, Outcome::EvictedOther);
    h.actor.await.unwrap();
    let late = h.controller.admit(request("a", 0, 10)).await.unwrap_err();
    assert_eq!(late.outcome, Outcome::RejectedOther);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_does_not_stop_admits_in_flight() {
    let h = harness(1, |_| {});
    let busy = h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap());
    let queued = h.spawn_admit("a", 0);
    settle().await;
    drop(h.controller);
    settle().await;
    drop(busy);
    drop(finished(queued).await.unwrap());
    h.actor.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_request_is_answered_exactly_once_under_churn() {
    let h = harness(3, |c| {
        c.default_request_ttl = Some(Duration::from_millis(400));
        c.default_band.max_requests = 8;
    });
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let priority = [1, 0, 0, -1][(i % 4) as usize];
        let controller = h.controller.clone();
        let datastore = Arc::clone(&h.datastore);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 7 % 300)).await;
            let admit = controller.admit(request(&format!("t{}", i % 5), priority, 100));
            let result = if i % 13 == 0 {
                // This client gives up after 50 ms.
                match tokio::time::timeout(Duration::from_millis(50), admit).await {
                    Ok(result) => result,
                    Err(_) => return None,
                }
            } else {
                admit.await
            };
            let Ok(admission) = result else {
                return Some(false);
            };
            let reservation = datastore.load().endpoints[0].load.reserve(0);
            drop(admission);
            tokio::time::sleep(Duration::from_millis(20 + i % 40)).await;
            drop(reservation);
            Some(true)
        }));
    }
    let (mut admitted, mut refused, mut gave_up) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Some(true) => admitted += 1,
            Some(false) => refused += 1,
            None => gave_up += 1,
        }
    }
    settle().await;
    assert_eq!(admitted + refused + gave_up, 200);
    let total: u64 = Outcome::ALL.iter().map(|o| h.count(*o)).sum();
    assert_eq!(total, 200, "each request has exactly one outcome");
    let dispatched = h.count(Outcome::Dispatched);
    let cancelled = h.count(Outcome::EvictedContextCancelled);
    // A client that gave up was either withdrawn, or dispatched as it left.
    assert_eq!(dispatched + cancelled, admitted + gave_up);
    assert_eq!(total - dispatched - cancelled, refused);
    assert!(
        gave_up > 0 && cancelled > 0,
        "some clients left while queued"
    );
    assert!(
        dispatched > 0
            && h.count(Outcome::RejectedSaturated) > 0
            && h.count(Outcome::EvictedTtl) > 0
    );
    assert_eq!(h.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn gauges_follow_the_queues() {
    let h = harness(1, |_| {});
    let busy = h.schedule(h.controller.admit(request("a", 0, 10)).await.unwrap());
    let waiting = h.spawn_admit("tenant", 3);
    settle().await;
    let metrics = Arc::clone(h.controller.metrics());
    assert_eq!(metrics.queue_bytes.load(AtomicOrdering::Relaxed), 100);
    assert!(metrics.pool_saturation() >= 1.0);
    tokio::time::advance(Duration::from_millis(1100)).await;
    settle().await;
    let flows = metrics.flows.load();
    assert_eq!(flows.len(), 1);
    assert_eq!(
        (&*flows[0].fairness_id, flows[0].priority, flows[0].requests),
        ("tenant", 3, 1)
    );
    drop(busy);
    drop(finished(waiting).await.unwrap());
    settle().await;
    assert!(
        metrics.flows.load().is_empty(),
        "cleared once the queues drain"
    );
    assert_eq!(h.queued(), 0);
    let (_, cycles) = metrics.dispatch_cycle.cumulative();
    assert!(cycles > 0);
}

#[tokio::test(start_paused = true)]
async fn stale_metrics_hold_dispatch_visibly_until_a_fresh_scrape() {
    let config = config(|_| {}); // utilization detector, 200 ms staleness
    let datastore = Arc::new(Datastore::new(pool(&[EndpointMetrics::default()])));
    let probe = SnapshotProbe::new(
        Arc::clone(&datastore),
        Detector::new(config.detector.clone()),
    );
    let (controller, _actor) = FlowController::spawn(config, probe, Arc::default());
    let waiting = tokio::spawn(controller.admit(request("a", 0, 10)));
    settle().await;
    tokio::time::advance(secs(1)).await;
    settle().await;
    assert!(
        !waiting.is_finished(),
        "never-scraped metrics count as saturated"
    );
    let metrics = controller.metrics();
    assert_eq!(metrics.stale_endpoints.load(AtomicOrdering::Relaxed), 1);
    assert_eq!(metrics.pool_saturation(), 1.0);

    let mut fresh = (*datastore.load()).clone();
    fresh.endpoints[0].scraped_at = Some(tokio::time::Instant::now().into_std());
    datastore.publish(fresh);
    drop(finished(waiting).await.unwrap());
    settle().await;
    assert_eq!(metrics.stale_endpoints.load(AtomicOrdering::Relaxed), 0);
}
