//! Lease expiry under clock skew: a holder's `renewTime` is its own wall clock, so it says
//! nothing about expiry here. A rule comparing it with the local wall clock (the rollout
//! controller's before this module) takes over a live lease whose holder's clock runs
//! behind, and follows a dead one whose holder's clock ran ahead; the "unchanged for" rule
//! gets both right.

use super::*;

/// A wall-clock time `offset_secs` from now, as a Lease's `renewTime`.
fn wall_clock_offset(offset_secs: i64) -> String {
    let at = Timestamp::from_second(Timestamp::now().as_second() + offset_secs).unwrap();
    at.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string()
}

/// Answers the next request, a read, with `lease`.
async fn answer_read(api: &mut ApiHandle, lease: &Value) {
    let (_, respond) = expect(api, Method::GET, &lease_path()).await;
    respond.send_response(reply(StatusCode::OK, lease));
}

/// The pure rule: expired only when seen unchanged for longer than the lease, whatever the
/// renew time says (an hour behind or ahead of the local wall clock).
#[test]
fn the_rule_ignores_renew_time() {
    let default = 15 * SECOND;
    for offset in [-3600, -16, 0, 16, 3600] {
        let mut held = spec(Some("b"), Some(15), 0);
        let renewed = Timestamp::from_second(Timestamp::now().as_second() + offset).unwrap();
        held.renew_time = Some(MicroTime(renewed));
        assert_eq!(
            decide(Some(&held), "a", Duration::ZERO, default),
            Decision::Follow { holder: "b".into() },
            "renewTime {offset:+} s off the local clock, just seen: live"
        );
        assert_eq!(
            decide(Some(&held), "a", 16 * SECOND, default),
            Decision::Acquire,
            "renewTime {offset:+} s off the local clock, unchanged for 16 s: expired"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_clock_runs_behind_keeps_its_lease() {
    let (election, mut api) = election();
    let mut candidate = Candidate::default();
    // epp-b renews every second, but its clock is an hour behind ours: by a wall-clock
    // rule its 3 s lease expired an hour ago at every read.
    for (second, version) in [(0, "3"), (1, "4"), (2, "5"), (3, "6"), (4, "7")] {
        let renewed = wall_clock_offset(second - 3600);
        let held = lease_json("epp-b", &renewed, version, 2);
        let (led, ()) = tokio::join!(election.round(&mut candidate), answer_read(&mut api, &held));
        assert!(!led.unwrap(), "took a live lease at second {second}");
        tokio::time::advance(SECOND).await;
    }
    // No write was attempted: a write would be the next request.
    let extra = tokio::time::timeout(SECOND, api.next_request()).await;
    assert!(extra.is_err(), "unexpected request");
}

#[tokio::test(start_paused = true)]
async fn a_dead_holder_whose_clock_ran_ahead_loses_its_lease() {
    let (election, mut api) = election();
    let mut candidate = Candidate::default();
    // epp-b's clock ran an hour ahead when it last renewed, then it died: by a wall-clock
    // rule its lease would look live for another hour.
    let held = lease_json("epp-b", &wall_clock_offset(3600), "3", 2);
    let (led, ()) = tokio::join!(election.round(&mut candidate), answer_read(&mut api, &held));
    assert!(!led.unwrap(), "just seen: live");
    tokio::time::advance(3 * SECOND + SECOND / 2).await;
    let take_over = async {
        answer_read(&mut api, &held).await;
        let (body, respond) = expect(&mut api, Method::PUT, &lease_path()).await;
        assert_eq!(body["spec"]["holderIdentity"], "epp-a");
        assert_eq!(body["metadata"]["resourceVersion"], "3");
        assert_eq!(body["spec"]["leaseTransitions"], 3);
        respond.send_response(reply(StatusCode::OK, &body));
    };
    let (led, ()) = tokio::join!(election.round(&mut candidate), take_over);
    assert!(
        led.unwrap(),
        "unchanged for longer than its 3 s lease: taken over"
    );
}
