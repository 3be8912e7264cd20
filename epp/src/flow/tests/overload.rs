//! The scenario in virtual time, in process: a pool pushed to 1.5×
//! its capacity with 20% priority 1, 60% priority 0 and 20% priority -1.
//! Requests go through the actor and the real scheduler (whose reservations
//! the concurrency detector reads); each holds its endpoint for a fixed
//! service time. It runs under upstream's default usage limit and under
//! `priority-holdback-policy`.

use std::collections::HashMap;

use super::*;
use crate::datastore::Datastore;
use crate::datastore::EndpointMetrics;
use crate::flow::UsageLimitPolicy;
use crate::scheduling::Scheduler;
use crate::scheduling::tests::{pool, request as view};

const ENDPOINTS: usize = 4;
const SLOTS_PER_ENDPOINT: u64 = 2;
const SERVICE: Duration = Duration::from_millis(100);
/// Capacity is 4 × 2 / 100 ms = 80 requests/s; offer 120/s for 10 s.
const OFFERED: u64 = 1200;
const INTERVAL_US: u64 = 1_000_000 / 120;

#[derive(Debug)]
enum Result_ {
    Served(Duration),
    Refused(Outcome),
}

/// Queue waits of the served requests and counts of the refused ones, by priority.
struct Tally {
    waits: HashMap<i64, Vec<Duration>>,
    refused: HashMap<(i64, Outcome), u64>,
}

impl Tally {
    fn served(&self, p: i64) -> u64 {
        self.waits.get(&p).map_or(0, Vec::len) as u64
    }

    fn refusals(&self, p: i64) -> u64 {
        self.refused
            .iter()
            .filter(|((q, _), _)| *q == p)
            .map(|(_, n)| *n)
            .sum::<u64>()
    }

    fn p99(&self, p: i64) -> Duration {
        let mut w = self.waits.get(&p).cloned().unwrap_or_default();
        w.sort_unstable();
        w.get(w.len() * 99 / 100).copied().unwrap_or_default()
    }
}

/// Offers the mix at 1.5× capacity through the actor under `usage_limit`.
async fn overload(usage_limit: UsageLimitPolicy) -> Tally {
    let config = config(|c| {
        c.detector = DetectorConfig::Concurrency {
            tokens: false,
            max_concurrency: SLOTS_PER_ENDPOINT,
            max_token_concurrency: 1,
        };
        c.default_request_ttl = Some(secs(2));
        c.usage_limit = usage_limit;
    });
    let datastore = Arc::new(Datastore::new(pool(&vec![
        EndpointMetrics::default();
        ENDPOINTS
    ])));
    let probe = SnapshotProbe::new(
        Arc::clone(&datastore),
        Detector::new(config.detector.clone()),
    );
    let (controller, _actor) = FlowController::spawn(config, probe, Arc::default());
    let scheduler = Arc::new(Scheduler::default());

    let mut tasks = Vec::new();
    for i in 0..OFFERED {
        let priority = match i % 10 {
            0 | 5 => 1,
            3 | 8 => -1,
            _ => 0,
        };
        let controller = controller.clone();
        let datastore = Arc::clone(&datastore);
        let scheduler = Arc::clone(&scheduler);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(i * INTERVAL_US)).await;
            let outcome = match controller
                .admit(request(&format!("t{}", i % 7), priority, 200))
                .await
            {
                Ok(admission) => {
                    let snapshot = datastore.load();
                    let pick = scheduler
                        .pick(&snapshot, &view(b"hello"))
                        .expect("the pool has endpoints");
                    let waited = admission.waited();
                    drop(admission);
                    tokio::time::sleep(SERVICE).await;
                    drop(pick);
                    Result_::Served(waited)
                }
                Err(rejection) => Result_::Refused(rejection.outcome),
            };
            (priority, outcome)
        }));
    }
    let mut waits: HashMap<i64, Vec<Duration>> = HashMap::new();
    let mut refused: HashMap<(i64, Outcome), u64> = HashMap::new();
    for task in tasks {
        let (priority, outcome) = task.await.unwrap();
        match outcome {
            Result_::Served(waited) => waits.entry(priority).or_default().push(waited),
            Result_::Refused(outcome) => *refused.entry((priority, outcome)).or_default() += 1,
        }
    }
    let tally = Tally { waits, refused };
    // Nothing lost: every request was served or refused, once.
    assert_eq!(
        (0..=1)
            .chain([-1])
            .map(|p| tally.served(p) + tally.refusals(p))
            .sum::<u64>(),
        OFFERED
    );
    let metrics = controller.metrics();
    assert_eq!(
        Outcome::ALL.iter().map(|o| metrics.count(*o)).sum::<u64>(),
        OFFERED
    );
    tally
}

#[tokio::test(start_paused = true)]
async fn overload_sheds_sheddable_first_and_keeps_priority_one_fast() {
    let tally = overload(UsageLimitPolicy::default()).await;
    let refused = &tally.refused;

    // Priority 1 is never refused and waits at most about one service time.
    assert_eq!(tally.refusals(1), 0, "{refused:?}");
    assert!(
        tally.p99(1) <= SERVICE,
        "priority-1 p99 wait {:?}",
        tally.p99(1)
    );
    // Sheddable work is refused at once, with 429 rejected-saturated.
    let shed = refused
        .get(&(-1, Outcome::RejectedSaturated))
        .copied()
        .unwrap_or(0);
    assert!(
        shed * 10 >= tally.refusals(-1) * 9 && shed > OFFERED / 10 / 2,
        "{refused:?}"
    );
    assert_eq!(tally.p99(-1), Duration::ZERO, "sheddable work never waits");
    // Priority 0 absorbs the rest of the overload in the queue, up to its TTL.
    assert!(tally.served(0) > 0);
    assert!(
        tally.p99(0) > tally.p99(1),
        "priority 0 waits longer than priority 1"
    );
    // The pool was kept full: served work ≈ capacity × duration.
    let total_served = tally.served(1) + tally.served(0) + tally.served(-1);
    assert!(total_served >= 750, "served {total_served}");
}

/// The same through `priority-holdback-policy` (ceilings 1.0 / 0.75 / 0.5 over the three
/// priorities): priority 0 stops at 6 of the 8 slots, so priority 1 waits far less than a
/// service time, and the pool gives up some throughput for it.
#[tokio::test(start_paused = true)]
async fn holdback_lets_priority_one_through_without_waiting_for_a_slot() {
    let strict = overload(UsageLimitPolicy::default()).await;
    let held = overload(UsageLimitPolicy::Spread {
        by_value: false,
        min_ceiling: 0.5,
        max_ceiling: 1.0,
    })
    .await;
    assert_eq!(held.refusals(1), 0, "{:?}", held.refused);
    assert!(
        held.p99(1) < strict.p99(1) && held.p99(1) <= SERVICE / 10,
        "priority-1 p99 wait {:?} (strict {:?})",
        held.p99(1),
        strict.p99(1)
    );
    assert_eq!(held.p99(-1), Duration::ZERO, "sheddable work never waits");
    let total = |t: &Tally| t.served(1) + t.served(0) + t.served(-1);
    assert!(total(&held) <= total(&strict));
}
