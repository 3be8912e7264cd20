//! Endpoint health end to end (review finding H6): on the local gateway (the real Envoy,
//! BBR, endpoint picker and simulator processes, started as `cargo xtask up` does), one of
//! three simulator processes is killed mid-run. Within 2 s the picker stops sending it new
//! requests, and the other two take its share without an error.
//!
//! Needs Envoy (`cargo xtask tools`) and the debug binaries of switchyard-sim, -bbr and -epp
//! (`cargo xtask test` builds them).

#![allow(clippy::unwrap_used)]

// Shared with the conformance suite; this test uses part of it.
#[allow(dead_code)]
#[path = "e2e_conformance/gateway.rs"]
mod gateway;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use gateway::{Gateway, Match, Pool, Rule};

/// Clients sending back to back.
const CLIENTS: usize = 6;
/// Traffic before the kill.
const BEFORE_KILL: Duration = Duration::from_millis(1500);
/// How soon after the kill the dead replica must be out of rotation.
const CUTOFF: Duration = Duration::from_secs(2);
/// Traffic after the cutoff, all of which must succeed.
const AFTER_CUTOFF: Duration = Duration::from_secs(3);

/// One request's fate.
struct Sent {
    at: Instant,
    /// When the answer arrived: a request in flight at the kill may fail, and counts as sent
    /// after it.
    done: Instant,
    status: u16,
    replica: Option<String>,
    /// The body of a failed request, for the assertion message.
    error: Option<String>,
}

/// Upstream's scorers without the `utilization-detector` filter: only outlier ejection (5xx
/// and refused connections seen on the response path) can take the dead replica out.
const EJECTION_ONLY_CONFIG: &str = "apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - pluginRef: max-score-picker
";

#[tokio::test]
async fn h6_a_killed_replica_stops_getting_requests_within_2s_and_the_others_take_its_share() {
    // The default profile: staleness (a dead server's scrapes fail) and ejection both act,
    // and the stale replica is not even probed again.
    kill_one_of_three(Pool::new("health", "m-health", 3), 0).await;
}

#[tokio::test]
async fn h6_outlier_ejection_alone_takes_a_killed_replica_out_within_2s() {
    // An ejection that expires lets requests probe the replica again (as Envoy's outlier
    // detection does): at most one per client before the first failure ejects it again, for
    // twice as long, so only a few fail.
    kill_one_of_three(
        Pool {
            picker_args: vec!["--config-text".to_owned(), EJECTION_ONLY_CONFIG.to_owned()],
            ..Pool::new("health", "m-health", 3)
        },
        CLIENTS,
    )
    .await;
}

/// Runs traffic through a pool of three, kills the first replica's process mid-run, and
/// checks that from 2 s after the kill every request (but at most `probes` that retry the
/// dead replica) succeeds on the two others, shared.
async fn kill_one_of_three(pool: Pool, probes: usize) {
    let mut gw = Gateway::start(
        &[pool],
        &[Rule {
            matches: Match::BaseModel("m-health"),
            backends: vec![("health", 1)],
        }],
    )
    .await;
    let victim = gw.running.process_mut("sim-health-0").unwrap().child.pid();
    let start = Instant::now();
    let killed_at = start + BEFORE_KILL;
    let end = killed_at + CUTOFF + AFTER_CUTOFF;

    let gw = &gw;
    let client = |_| async move {
        let mut sent = Vec::new();
        while Instant::now() < end {
            let at = Instant::now();
            let response = gw.chat("m-health", &[]).await;
            sent.push(Sent {
                at,
                done: Instant::now(),
                status: response.status.as_u16(),
                replica: gw.replica(&response).map(str::to_owned),
                error: (response.status != 200).then(|| response.text()),
            });
        }
        sent
    };
    let killer = async move {
        tokio::time::sleep_until(killed_at.into()).await;
        // SIGKILL: a crash, not a drain; the pod would still be Ready in a cluster.
        let status = std::process::Command::new("kill")
            .args(["-KILL", &victim.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        Vec::new()
    };
    let mut runs: Vec<_> = (0..CLIENTS)
        .map(|i| Box::pin(client(i)) as std::pin::Pin<Box<dyn Future<Output = Vec<Sent>>>>)
        .collect();
    runs.push(Box::pin(killer));
    let sent: Vec<Sent> = join_all(runs).await.into_iter().flatten().collect();

    let served = |from: Instant, to: Instant| {
        let mut by_replica = BTreeMap::<String, usize>::new();
        let mut errors = BTreeMap::<u16, usize>::new();
        // Only requests answered before the kill count as before it.
        let settled = |s: &Sent| {
            if s.done < killed_at {
                s.done
            } else {
                s.at.max(killed_at)
            }
        };
        for s in sent
            .iter()
            .filter(|s| settled(s) >= from && settled(s) < to)
        {
            match (&s.replica, s.status) {
                (Some(replica), 200) => *by_replica.entry(replica.clone()).or_default() += 1,
                (_, status) => *errors.entry(status).or_default() += 1,
            }
        }
        (by_replica, errors)
    };
    let (before, before_errors) = served(start, killed_at);
    assert!(
        before.get("health-0-0").is_some_and(|n| *n > 0),
        "the victim served nothing before it was killed: {before:?}"
    );
    let first_error = || {
        sent.iter()
            .find_map(|s| s.error.clone())
            .unwrap_or_default()
    };
    assert!(
        before_errors.is_empty(),
        "{before_errors:?} before the kill; first: {}\n{}",
        first_error(),
        gw.envoy_log()
    );
    let (window, window_errors) = served(killed_at, killed_at + CUTOFF);
    let (after, after_errors) = served(killed_at + CUTOFF, end);
    eprintln!(
        "before the kill {before:?}; first {CUTOFF:?} after it {window:?}, errors \
         {window_errors:?}; then {after:?}, errors {after_errors:?}"
    );
    assert!(
        after_errors.values().sum::<usize>() <= probes,
        "requests still failed {CUTOFF:?} after the kill: {after_errors:?}; served {after:?}\n{}",
        gw.envoy_log()
    );
    assert_eq!(after.get("health-0-0"), None);
    let total: usize = after.values().sum();
    assert!(total >= 30, "too little traffic to judge: {after:?}");
    for survivor in ["health-1-0", "health-2-0"] {
        let share = after.get(survivor).copied().unwrap_or(0);
        assert!(
            share * 5 >= total,
            "{survivor} took {share} of {total} requests: the survivors must share the load"
        );
    }
}
