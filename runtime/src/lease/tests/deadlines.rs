//! Every round runs under a deadline, and a leader steps down at its renew deadline even
//! when the apiserver never answers; `acquire`/`hold` report why leadership ended.

use super::*;

/// Accepts every request and never answers, keeping the responders so the requests stay
/// pending (dropping one would fail the request instead of hanging it).
fn hang(mut api: ApiHandle) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some((_, respond)) = api.next_request().await {
            pending.push(respond);
        }
        pending.len()
    })
}

/// Answers the creation of an absent Lease.
async fn create(api: &mut ApiHandle) {
    let (_, respond) = expect(api, Method::GET, &lease_path()).await;
    respond.send_response(reply(StatusCode::NOT_FOUND, &status(404, "NotFound")));
    let (created, respond) = expect(
        api,
        Method::POST,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"),
    )
    .await;
    respond.send_response(reply(StatusCode::CREATED, &created));
}

#[tokio::test(start_paused = true)]
async fn a_round_that_hangs_fails_at_its_deadline() {
    let (mut election, api) = election();
    election.round_timeout = SECOND / 2;
    let hung = hang(api);
    let mut candidate = Candidate::default();
    let started = Instant::now();
    let err = election.round(&mut candidate).await.unwrap_err();
    assert_eq!(started.elapsed(), SECOND / 2);
    assert!(
        matches!(err, LeaseError::TimedOut { deadline, .. } if deadline == SECOND / 2),
        "{err}"
    );
    assert!(err.to_string().contains(LEASE), "{err}");
    hung.abort();
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_apiserver_hangs_steps_down_at_the_renew_deadline() {
    let (mut api, mut leader, stop, task) = start();
    create(&mut api).await;
    until(&mut leader, true).await;
    let led_at = Instant::now();
    // The apiserver stops answering: without a round deadline the renewal would wait
    // forever and the replica would go on leading after its lease expired.
    let hung = hang(api);
    until(&mut leader, false).await;
    let led_for = led_at.elapsed();
    assert_eq!(
        led_for,
        2 * SECOND,
        "stepped down at the renew deadline, before the 3 s lease expires"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(10 * SECOND, task)
        .await
        .unwrap()
        .unwrap();
    hung.abort();
}

#[tokio::test(start_paused = true)]
async fn hold_reports_a_renew_deadline_passed_without_renewal() {
    let (election, mut api) = election();
    let acquiring = async {
        create(&mut api).await;
    };
    let (candidate, ()) = tokio::join!(election.acquire(), acquiring);
    let acquired_at = Instant::now();
    let hung = hang(api);
    let lost = election.hold(candidate).await;
    assert_eq!(acquired_at.elapsed(), 2 * SECOND);
    assert!(
        matches!(&lost, LeaseError::Lost { reason, .. } if reason.contains("did not finish")),
        "{lost}"
    );
    hung.abort();
}

#[tokio::test(start_paused = true)]
async fn hold_reports_another_holder_at_once() {
    let (election, mut api) = election();
    let (candidate, ()) = tokio::join!(election.acquire(), create(&mut api));
    let taken = async {
        let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
        respond.send_response(reply(
            StatusCode::OK,
            &lease_json("epp-b", "2026-01-01T00:00:05.000000Z", "9", 1),
        ));
    };
    let (lost, ()) = tokio::join!(election.hold(candidate), taken);
    assert!(
        matches!(&lost, LeaseError::Lost { reason, .. } if reason == "another replica holds it"),
        "{lost}"
    );
}
