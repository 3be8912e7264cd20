//! The conformance suite on the local gateway: each test writes Gateway API and inference
//! manifests plus a local endpoints file, starts the whole stack as `cargo xtask up` does
//! (simulator replicas, BBR, one endpoint picker per pool, the real Envoy; free ports) and
//! checks one behaviour through Envoy's listener. Tests are named after upstream's
//! conformance tests (`conformance/tests`, docs/upstream.md#conformance) where one exists.
//!
//! Every test carries a negative check — something that must NOT happen, or the same request
//! without the condition under test — so it fails when the behaviour breaks rather than
//! passing on a gateway that ignores it.
//!
//! Needs Envoy (`cargo xtask tools`) and the debug binaries of switchyard-sim, -bbr and -epp
//! (`cargo xtask test` builds them).

#![allow(clippy::unwrap_used)]

#[path = "e2e_conformance/gateway.rs"]
mod gateway;
#[path = "e2e_conformance/stream.rs"]
mod stream;

#[path = "e2e_conformance/bbr_and_picker.rs"]
mod bbr_and_picker;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::StatusCode;
use switchyard_local::running::health;

use gateway::{
    Gateway, Match, Pool, Rule, SERVED_ENDPOINT_HEADER, TEST_SELECTION_HEADER,
    TESTING_PICKER_CONFIG,
};

fn testing_pool(name: &'static str, model: &'static str, replicas: u16) -> Pool {
    Pool {
        picker_args: vec!["--config-text".to_owned(), TESTING_PICKER_CONFIG.to_owned()],
        ..Pool::new(name, model, replicas)
    }
}

pub(crate) fn rule(model: &'static str, backends: &[(&'static str, u32)]) -> Rule {
    Rule {
        matches: Match::BaseModel(model),
        backends: backends.to_vec(),
    }
}

/// Upstream `GatewayFollowingEPPRouting`: traffic reaches only the one to three endpoints the
/// picker was told to choose (through upstream's `test-epp-endpoint-selection` header, which
/// our picker honours only when its EndpointPickerConfig lists `header-based-testing-filter`).
#[tokio::test]
async fn gateway_following_epp_routing() {
    let gw = Gateway::start(
        &[testing_pool("pinned", "m-pinned", 3)],
        &[rule("m-pinned", &[("pinned", 1)])],
    )
    .await;
    let endpoints = gw.endpoints("pinned");
    for count in 1..=3 {
        let pinned = &endpoints[..count];
        let header: Vec<String> = pinned.iter().map(|(_, a)| a.to_string()).collect();
        let header = header.join(",");
        let names: BTreeSet<&str> = pinned.iter().map(|(n, _)| n.as_str()).collect();
        for i in 0..9 {
            let prompt = format!("request {i} pinned to {count}");
            let response = gw
                .chat_prompt("m-pinned", &prompt, &[(TEST_SELECTION_HEADER, &header)])
                .await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            let replica = gw.replica(&response).unwrap();
            assert!(
                names.contains(replica),
                "{replica} answered, pinned {names:?}"
            );
        }
    }
    // Negative: a pin naming no endpoint of the pool is not silently ignored.
    let response = gw
        .chat("m-pinned", &[(TEST_SELECTION_HEADER, "127.0.0.1:1")])
        .await;
    assert_ne!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(gw.replica(&response), None);
}

/// Upstream `GatewayFollowingEPPRoutingWithDataParallelism`: a pool with three target ports
/// (one engine per port in each pod); an `ip:port` pin reaches exactly that rank.
#[tokio::test]
async fn gateway_following_epp_routing_with_data_parallelism() {
    let pool = Pool {
        target_ports: 3,
        ..testing_pool("dp", "m-dp", 1)
    };
    let gw = Gateway::start(&[pool], &[rule("m-dp", &[("dp", 1)])]).await;
    let endpoints = gw.endpoints("dp");
    assert_eq!(endpoints.len(), 3);
    for (name, addr) in &endpoints {
        for _ in 0..3 {
            let response = gw
                .chat("m-dp", &[(TEST_SELECTION_HEADER, &addr.to_string())])
                .await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            assert_eq!(gw.replica(&response), Some(name.as_str()));
        }
    }
    // Negative: an IP-only pin names every rank of the pod, so more than one rank answers.
    let mut seen = BTreeSet::new();
    for i in 0..30 {
        let response = gw
            .chat_prompt(
                "m-dp",
                &format!("spread {i}"),
                &[(TEST_SELECTION_HEADER, "127.0.0.1")],
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        seen.insert(gw.replica(&response).unwrap().to_owned());
    }
    assert!(seen.len() > 1, "an IP pin reached only {seen:?}");
}

/// Upstream `GatewayDestinationEndpointServed`: the gateway reports the endpoint that served
/// each request back to the picker (response metadata `envoy.lb` →
/// `x-gateway-destination-endpoint-served`), and the picker's
/// `destination-endpoint-served-verifier` echoes it in `x-conformance-test-served-endpoint`.
/// The replica's own name (`x-inference-pod`) says independently who answered.
#[tokio::test]
async fn gateway_destination_endpoint_served() {
    let gw = Gateway::start(
        &[
            testing_pool("served", "m-served", 3),
            Pool::new("plain", "m-plain", 1),
        ],
        &[
            rule("m-served", &[("served", 1)]),
            rule("m-plain", &[("plain", 1)]),
        ],
    )
    .await;
    let endpoints = gw.endpoints("served");
    // As upstream: each endpoint pinned in turn is the one reported.
    for (name, addr) in &endpoints {
        let addr = addr.to_string();
        let response = gw.chat("m-served", &[(TEST_SELECTION_HEADER, &addr)]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(gw.replica(&response), Some(name.as_str()));
        assert_eq!(
            response.header(SERVED_ENDPOINT_HEADER),
            Some(addr.as_str()),
            "{:?}\n{}",
            response.headers,
            gw.envoy_log()
        );
        // Negative: the gateway's internal stamp does not leak to the client.
        assert_eq!(
            response.header("x-gateway-destination-endpoint-served"),
            None
        );
    }
    // Unpinned: the report follows whichever replica answered, so it is not a constant.
    let mut reported = BTreeSet::new();
    for i in 0..12 {
        let response = gw.chat_prompt("m-served", &format!("free {i}"), &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let replica = gw.replica(&response).unwrap();
        let (_, addr) = endpoints.iter().find(|(n, _)| n == replica).unwrap();
        let served = response.header(SERVED_ENDPOINT_HEADER).unwrap();
        assert_eq!(served, addr.to_string(), "{replica} answered");
        reported.insert(served.to_owned());
    }
    assert!(reported.len() > 1, "12 requests all reported {reported:?}");
    // Negative: a picker without the verifier adds no such header.
    let response = gw.chat("m-plain", &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.header(SERVED_ENDPOINT_HEADER), None);
}

/// Upstream `GatewayWeightedAcrossTwoInferencePools`: a 70/30 split of one rule between two
/// pools, within ±5 points over 1,000 requests, each request served inside one pool.
#[tokio::test]
async fn gateway_weighted_across_two_inference_pools() {
    let gw = Gateway::start(
        &[Pool::new("w-a", "m-w", 1), Pool::new("w-b", "m-w", 1)],
        &[rule("m-w", &[("w-a", 70), ("w-b", 30)])],
    )
    .await;
    let gw = &gw;
    let pools: Vec<Option<String>> = futures::stream::iter(0..1000)
        .map(|i| async move {
            let response = gw.chat_prompt("m-w", &format!("split {i}"), &[]).await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            gw.pool(&response)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for pool in pools {
        *counts.entry(pool.unwrap()).or_default() += 1;
    }
    let a = counts.get("w-a").copied().unwrap_or(0);
    let share = a as f64 / 1000.0;
    assert!(
        (0.65..=0.75).contains(&share),
        "w-a got {share}: {counts:?}"
    );
    // Negative: not an even split, and the 30% pool really is used.
    assert!(!(0.45..=0.55).contains(&share), "{counts:?}");
    assert!(counts.get("w-b").copied().unwrap_or(0) > 0, "{counts:?}");
}

/// Upstream `EppUnAvailableFailOpen`: with the picker of a FailOpen pool down, requests are
/// still served (200) by the pool's endpoints.
#[tokio::test]
async fn epp_unavailable_fail_open() {
    let pool = Pool {
        fail_open: true,
        ..Pool::new("open", "m-open", 2)
    };
    let mut gw = Gateway::start(&[pool], &[rule("m-open", &[("open", 1)])]).await;
    assert_eq!(gw.chat("m-open", &[]).await.status, StatusCode::OK);
    gw.stop_picker("open");
    // Negative: the picker really is gone (its health endpoint does not answer).
    let health_addr = gw.running.stack.plan.pools[0].picker.health;
    assert!(health::check(health_addr, "readiness").await.is_err());
    // Envoy notices a dead picker by its connection failing: the refused connection ejects the
    // picker (outlier detection), but the ejection reaches the worker from Envoy's main thread,
    // so a request sent right behind the first may still try the dead picker. Failures are
    // allowed only at the start; once the picker is out, every request is served.
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let response = gw.chat("m-open", &[]).await;
        if response.status == StatusCode::OK {
            assert_eq!(gw.pool(&response).as_deref(), Some("open"));
        }
        outcomes.push(response.status == StatusCode::OK);
    }
    let failures = outcomes.iter().filter(|ok| !**ok).count();
    let served_once_out = outcomes.iter().skip_while(|ok| !**ok).all(|ok| *ok);
    assert!(
        failures <= 2 && served_once_out,
        "{failures} requests failed ({outcomes:?})\n{}",
        gw.envoy_log()
    );
}

/// FailClose: with the picker down, requests get a 5xx within a second, and no endpoint is
/// reached.
#[tokio::test]
async fn epp_unavailable_fail_close() {
    let mut gw = Gateway::start(
        &[Pool::new("closed", "m-closed", 2)],
        &[rule("m-closed", &[("closed", 1)])],
    )
    .await;
    // Negative: the same request succeeds while the picker runs.
    let response = gw.chat("m-closed", &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    gw.stop_picker("closed");
    for _ in 0..3 {
        let started = Instant::now();
        let response = gw.chat("m-closed", &[]).await;
        let took = started.elapsed();
        assert!(response.status.is_server_error(), "{}", response.status);
        assert!(took < Duration::from_secs(1), "the 5xx took {took:?}");
        assert_eq!(gw.replica(&response), None);
    }
}

/// Upstream `HTTPRouteMultipleRulesDifferentPools`: path rules reach their own pools.
#[tokio::test]
async fn http_route_multiple_rules_different_pools() {
    let gw = Gateway::start(
        &[
            Pool::new("chat", "m-rules", 1),
            Pool::new("text", "m-rules", 1),
        ],
        &[
            Rule {
                matches: Match::Path("/v1/chat/completions"),
                backends: vec![("chat", 1)],
            },
            Rule {
                matches: Match::Path("/v1/completions"),
                backends: vec![("text", 1)],
            },
        ],
    )
    .await;
    for _ in 0..5 {
        let response = gw.chat("m-rules", &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(gw.pool(&response).as_deref(), Some("chat"));
        let body = serde_json::json!({"model": "m-rules", "prompt": "hi", "max_tokens": 2});
        let response = gw.post("/v1/completions", &[], body.to_string()).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        // Negative: a text completion never lands in the chat pool.
        assert_ne!(gw.pool(&response).as_deref(), Some("chat"));
        assert_eq!(gw.pool(&response).as_deref(), Some("text"));
    }
}

/// Upstream `HTTPRouteInvalidInferencePoolRef`: a rule naming a pool that does not exist is
/// reported by the translator and answers 5xx; the route's other rules keep working.
#[tokio::test]
async fn http_route_invalid_inference_pool_ref() {
    let gw = Gateway::start(
        &[Pool::new("real", "m-real", 1)],
        &[
            Rule {
                matches: Match::Path("/v1/completions"),
                backends: vec![("no-such-pool", 1)],
            },
            rule("m-real", &[("real", 1)]),
        ],
    )
    .await;
    let warnings: Vec<String> = gw
        .running
        .stack
        .config
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("no-such-pool")),
        "{warnings:?}"
    );
    let body = serde_json::json!({"model": "m-real", "prompt": "hi", "max_tokens": 2});
    let response = gw.post("/v1/completions", &[], body.to_string()).await;
    assert!(response.status.is_server_error(), "{}", response.status);
    assert_eq!(gw.replica(&response), None);
    // Negative: the valid rule of the same route serves.
    let response = gw.chat("m-real", &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(gw.pool(&response).as_deref(), Some("real"));
}
