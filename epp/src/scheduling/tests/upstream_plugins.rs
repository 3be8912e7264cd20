//! llm-d-router's plugins, each built from an upstream-shaped config and checked for its
//! behaviour: role and label filters, load-aware, active-request, context-length-aware,
//! prefix-cache-affinity-filter and the prefix scorer's match-length weighting.

use std::collections::BTreeMap;

use super::*;
use crate::scheduling::plugins::ContextLengthScorer;

fn labelled(i: u8, labels: &[(&str, &str)]) -> Endpoint {
    let mut e = endpoint(i, EndpointMetrics::default());
    e.labels = Arc::new(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    e
}

fn snapshot(endpoints: Vec<Endpoint>) -> PoolSnapshot {
    PoolSnapshot {
        endpoints,
        ..PoolSnapshot::default()
    }
}

/// The config of one plugin in a `default` profile (no `schedulingProfiles`: upstream's
/// loader builds it from the declared plugins).
fn one(type_: &str, parameters: &str) -> SchedulerConfig {
    SchedulerConfig::from_yaml(&format!(
        "plugins:\n- type: {type_}\n  parameters: {parameters}\n"
    ))
    .unwrap()
}

fn filtered(
    config: &SchedulerConfig,
    snap: &PoolSnapshot,
    prompt: &[u8],
    hashes: &[u64],
) -> Vec<usize> {
    let view = request(prompt);
    let ctx = Context {
        snapshot: snap,
        request: &view,
        prefix_hashes: hashes,
    };
    let mut candidates: Vec<usize> = (0..snap.endpoints.len()).collect();
    for filter in &config.filters {
        filter.filter(&ctx, &mut candidates);
    }
    candidates
}

fn scores(
    config: &SchedulerConfig,
    snap: &PoolSnapshot,
    prompt: &[u8],
    hashes: &[u64],
) -> Vec<f64> {
    let view = request(prompt);
    let ctx = Context {
        snapshot: snap,
        request: &view,
        prefix_hashes: hashes,
    };
    let candidates: Vec<usize> = (0..snap.endpoints.len()).collect();
    let mut out = vec![0.0; candidates.len()];
    config.scorers[0].0.score(&ctx, &candidates, &mut out);
    out
}

fn role_pool() -> PoolSnapshot {
    let roles = [
        "decode",
        "prefill",
        "encode",
        "prefill-decode",
        "both",
        "encode-prefill",
        "encode-prefill-decode",
    ];
    let mut endpoints: Vec<Endpoint> = roles
        .iter()
        .enumerate()
        .map(|(i, r)| labelled(i as u8 + 1, &[("llm-d.ai/role", r)]))
        .collect();
    endpoints.push(labelled(9, &[]));
    snapshot(endpoints)
}

#[test]
fn role_filters_keep_their_stages() {
    let pool = role_pool();
    let kept = |type_: &str| filtered(&one(type_, "{}"), &pool, b"", &[]);
    // decode, prefill-decode, both, encode-prefill-decode, and the unlabelled pod.
    assert_eq!(kept("decode-filter"), [0, 3, 4, 6, 7]);
    // prefill, prefill-decode, both, encode-prefill, encode-prefill-decode.
    assert_eq!(kept("prefill-filter"), [1, 3, 4, 5, 6]);
    assert_eq!(kept("encode-filter"), [2, 5, 6]);
}

#[test]
fn label_selector_filter_matches_labels_and_expressions() {
    let pool = snapshot(vec![
        labelled(1, &[("tier", "gpu"), ("zone", "a")]),
        labelled(2, &[("tier", "gpu"), ("zone", "b")]),
        labelled(3, &[("tier", "cpu")]),
    ]);
    let config = one(
        "label-selector-filter",
        "{matchLabels: {tier: gpu}, matchExpressions: [{key: zone, operator: NotIn, values: [b]}]}",
    );
    assert_eq!(filtered(&config, &pool, b"", &[]), [0]);
    let config = one(
        "label-selector-filter",
        "{matchExpressions: [{key: zone, operator: DoesNotExist}]}",
    );
    assert_eq!(filtered(&config, &pool, b"", &[]), [2]);
}

#[test]
fn load_aware_scores_half_at_an_empty_queue_falling_to_zero() {
    let pool = snapshot(vec![
        endpoint(1, queue(0)),
        endpoint(2, queue(64)),
        endpoint(3, queue(500)),
    ]);
    assert_eq!(
        scores(&one("load-aware-scorer", "{}"), &pool, b"", &[]),
        [0.5, 0.25, 0.0]
    );
    let s = scores(
        &one("load-aware-scorer", "{threshold: 64}"),
        &pool,
        b"",
        &[],
    );
    assert_eq!(s, [0.5, 0.0, 0.0]);
}

#[test]
fn active_request_prefers_idle_endpoints() {
    let pool = snapshot(vec![
        endpoint(1, queue(0)),
        endpoint(2, queue(0)),
        endpoint(3, queue(0)),
    ]);
    let _held: Vec<_> = [(1, 2), (2, 4)]
        .iter()
        .flat_map(|&(i, n)| (0..n).map(move |_| i))
        .map(|i: usize| pool.endpoints[i].load.reserve(10))
        .collect();
    assert_eq!(
        scores(&one("active-request-scorer", "{}"), &pool, b"", &[]),
        [1.0, 0.5, 0.0]
    );
    let gap = one(
        "active-request-scorer",
        "{idleThreshold: 2, maxBusyScore: 0.5}",
    );
    assert_eq!(scores(&gap, &pool, b"", &[]), [1.0, 1.0, 0.0]);
    let gap = one("active-request-scorer", "{maxBusyScore: 0.5}");
    assert_eq!(scores(&gap, &pool, b"", &[]), [1.0, 0.25, 0.0]);
}

#[test]
fn context_length_aware_scores_and_filters_by_range() {
    let label = "llm-d.ai/context-length-range";
    let pool = snapshot(vec![
        labelled(1, &[(label, "0-2048")]),
        labelled(2, &[(label, "2048-8192")]),
        labelled(3, &[(label, "0-131072")]),
        labelled(4, &[]),
    ]);
    // 1000 tokens (4 bytes each).
    let prompt = vec![b'x'; 4000];
    let s = scores(&one("context-length-aware", "{}"), &pool, &prompt, &[]);
    assert!(
        s[0] > s[2] && s[2] > 0.3,
        "tighter in-range range wins: {s:?}"
    );
    assert!(s[1] < 0.3, "out of range stays under 0.3: {s:?}");
    assert_eq!(s[3], 0.5, "unlabelled is neutral");
    let config = one("context-length-aware", "{enableFiltering: true}");
    assert_eq!(filtered(&config, &pool, &prompt, &[]), [0, 2, 3]);
    // Out of range, the nearer range scores higher (a 9000-token prompt).
    let near = ContextLengthScorer::fit(Some((0, 8192)), 9000);
    let far = ContextLengthScorer::fit(Some((0, 2048)), 9000);
    assert!(near > far && near < 0.3, "{near} {far}");
}

#[test]
fn prefix_cache_affinity_sticks_until_the_holder_is_overloaded() {
    let pool = snapshot(vec![
        endpoint(1, queue(0)),
        endpoint(2, queue(0)),
        endpoint(3, queue(0)),
    ]);
    let hashes = [11, 12, 13, 14, 15];
    for &h in &hashes {
        pool.endpoints[0].prefix.insert(h);
    }
    for &h in &hashes[..3] {
        pool.endpoints[1].prefix.insert(h);
    }
    let config = one("prefix-cache-affinity-filter", "{}");
    assert!(
        config.prefix.is_some(),
        "the filter needs the prompt's hashes"
    );
    assert_eq!(
        filtered(&config, &pool, b"", &hashes),
        [0],
        "only the 100 % holder is sticky"
    );
    let config = one("prefix-cache-affinity-filter", "{affinityThreshold: 0.6}");
    assert_eq!(filtered(&config, &pool, b"", &hashes), [0, 1]);
    // Nobody holds the prompt: no-op.
    assert_eq!(filtered(&config, &pool, b"", &[99, 98]), [0, 1, 2]);
    // 20 000 in-flight tokens at 10 000 tok/s = 2 s of queue, over a 1 s penalty: break.
    let _busy = pool.endpoints[0].load.reserve(20_000);
    let gate = one(
        "prefix-cache-affinity-filter",
        "{maxTTFTPenaltyMs: 1000, peakPrefillThroughput: 10000}",
    );
    assert_eq!(filtered(&gate, &pool, b"", &hashes), [0, 1, 2]);
    let always = one(
        "prefix-cache-affinity-filter",
        "{maxTTFTPenaltyMs: 0, peakPrefillThroughput: 10000}",
    );
    assert_eq!(
        filtered(&always, &pool, b"", &hashes),
        [0],
        "0 = always stick"
    );
    let explore = one(
        "prefix-cache-affinity-filter",
        "{explorationProbability: 1.0}",
    );
    assert_eq!(
        filtered(&explore, &pool, b"", &hashes),
        [0, 1, 2],
        "always explores"
    );
}

#[test]
fn prefix_scorer_weighs_match_length() {
    let pool = snapshot(vec![endpoint(1, queue(0)), endpoint(2, queue(0))]);
    let hashes: Vec<u64> = (1..=8).collect();
    for &h in &hashes[..4] {
        pool.endpoints[0].prefix.insert(h);
    }
    let ratio = scores(&one("prefix-cache-scorer", "{}"), &pool, b"", &hashes);
    assert_eq!(ratio, [0.5, 0.0]);
    // 4 blocks × 16 tokens = 64 of a 128-token scale: length term (0.5)² = 0.25.
    let weighted = one(
        "prefix-cache-scorer",
        "{matchLengthWeight: 0.5, matchLengthScaleTokens: 128, blockSizeTokens: 16}",
    );
    let s = scores(&weighted, &pool, b"", &hashes);
    assert!((s[0] - (0.5 * 0.25 + 0.5 * 0.5)).abs() < 1e-9, "{s:?}");
}
