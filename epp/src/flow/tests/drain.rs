//! H7: the drain dispatches what is queued, rather than refusing it or holding it for
//! capacity this replica will not be there to see; only the stop refuses.

use tokio::task::JoinHandle;

use super::*;
use crate::datastore::{Datastore, EndpointMetrics};
use crate::scheduling::tests::pool;

/// One endpoint that takes one request at a time, and the datastore the probe reads.
fn one_seat(endpoints: usize) -> (FlowController, Arc<Datastore>, JoinHandle<()>) {
    let config = config(|c| {
        c.detector = DetectorConfig::Concurrency {
            tokens: false,
            max_concurrency: 1,
            max_token_concurrency: 1,
        };
    });
    let metrics = vec![EndpointMetrics::default(); endpoints];
    let datastore = Arc::new(Datastore::new(pool(&metrics)));
    let probe = SnapshotProbe::new(
        Arc::clone(&datastore),
        Detector::new(config.detector.clone()),
    );
    let (controller, actor) = FlowController::spawn(config, probe, Arc::default());
    (controller, datastore, actor)
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn h7_draining_dispatches_queued_requests_while_endpoints_exist() {
    let (controller, datastore, actor) = one_seat(1);
    // The one seat is taken; two more requests queue for it.
    let first = controller.admit(request("a", 0, 10)).await.unwrap();
    let _busy = datastore.load().endpoints[0].load.reserve(0);
    drop(first);
    let queued: Vec<_> = (0..2)
        .map(|_| tokio::spawn(controller.admit(request("a", 0, 10))))
        .collect();
    settle().await;
    assert!(
        queued.iter().all(|q| !q.is_finished()),
        "saturated: they wait"
    );

    controller.drain();
    for q in queued {
        let admitted = tokio::time::timeout(Duration::from_secs(1), q).await;
        assert!(
            matches!(admitted, Ok(Ok(Ok(_)))),
            "dispatched on drain, not refused: {admitted:?}"
        );
    }
    // What still arrives while the streams drain is dispatched too.
    let late = controller.admit(request("a", 0, 10)).await;
    assert!(late.is_ok(), "{late:?}");
    assert_eq!(controller.metrics().count(Outcome::RejectedOther), 0);

    // The stop, once the servers are done, refuses what is left.
    controller.shutdown();
    actor.await.unwrap();
    let after = controller.admit(request("a", 0, 10)).await.unwrap_err();
    assert_eq!(after.outcome, Outcome::RejectedOther);
}

#[tokio::test(start_paused = true)]
async fn h7_draining_without_endpoints_keeps_requests_queued_not_refused() {
    let (controller, _datastore, actor) = one_seat(0);
    let queued = tokio::spawn(controller.admit(request("a", 0, 10)));
    settle().await;
    controller.drain();
    settle().await;
    assert!(!queued.is_finished(), "no endpoint to send it to: it waits");
    controller.shutdown();
    let refused = queued.await.unwrap().unwrap_err();
    assert_eq!(refused.dropped_reason(), "rejected-shutting-down");
    actor.await.unwrap();
}
