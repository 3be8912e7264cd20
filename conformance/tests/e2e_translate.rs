//! The translator's output on the real Envoy: HTTPRoutes and InferencePools → routes, weighted
//! pools, per-pool pickers, failure modes, hot route changes.
//!
//! Test ext_proc servers stand in for BBR (copies the body's `model` into
//! `x-gateway-model-name`, as upstream BBR does); a FULL_DUPLEX_STREAMED stand-in
//! (`e2e_translate/picker.rs`) for each pool's endpoint picker, which picks the endpoint named
//! in a per-pool request header, so the test decides the pick and can tell which picker ran.
//! Loopback backends answer with their name.
//!
//! Needs Envoy: run `cargo xtask tools` (or set SWITCHYARD_ENVOY).

#![allow(clippy::unwrap_used)]

#[path = "e2e_translate/picker.rs"]
mod picker;
#[path = "e2e_translate/stack.rs"]
mod stack;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use switchyard_conformance::client::HttpClient;
use switchyard_conformance::ports;
use switchyard_local::gateway::GatewayEnvoy;
use switchyard_local::translate::{ConfigDir, Manifests, translate};

use stack::{Stack, TestPool, backend_of, pick_header, pool_yaml, route_yaml, split};

#[tokio::test]
async fn e2e_translate_header_match_routes_to_the_pool_its_picker_picks() {
    let pools = vec![
        ("a", TestPool::start("a", 2).await),
        ("b", TestPool::start("b", 1).await),
    ];
    let yaml = pool_yaml("a", "FailClose") + &pool_yaml("b", "FailClose");
    let route = route_yaml(&[("model-a", &[("a", 1)]), ("model-b", &[("b", 1)])]);
    let stack = Stack::start(pools, yaml, &route).await;

    let response = stack.chat("model-a").await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{}\n{}",
        response.text(),
        stack.envoy.log_tail(20)
    );
    assert_eq!(backend_of(&response), "a-0");
    let response = stack.chat("model-b").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(backend_of(&response), "b-0");
    // Each pool's own picker ran once, and only for its own requests.
    assert_eq!(stack.pool("a").picker_streams(), 1);
    assert_eq!(stack.pool("b").picker_streams(), 1);

    // A pick the client did not steer: the picker's answer alone chooses the endpoint.
    let body = json!({"model": "model-a"}).to_string();
    let second = stack.pool("a").backends[1].addr().to_string();
    let response = stack
        .client
        .post(
            &stack.envoy.url("/v1/completions"),
            &[(pick_header("a").as_str(), second.as_str())],
            body,
        )
        .await
        .unwrap();
    assert_eq!(backend_of(&response), "a-1", "{}", response.text());

    // No rule matches: 404 from the catch-all, and no picker was asked.
    let response = stack.chat("unknown-model").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.text().contains("no HTTPRoute rule matches"));
    assert_eq!(stack.pool("a").picker_streams(), 2);
    assert_eq!(stack.pool("b").picker_streams(), 1);
}

#[tokio::test]
async fn e2e_translate_weighted_split_between_pools_and_hot_weight_change() {
    let pools = vec![
        ("a", TestPool::start("a", 1).await),
        ("b", TestPool::start("b", 1).await),
    ];
    let yaml = pool_yaml("a", "FailClose") + &pool_yaml("b", "FailClose");
    let stack = Stack::start(pools, yaml, &route_yaml(&[("m", &[("a", 70), ("b", 30)])])).await;

    let counts = split(&stack, "m", 1000).await;
    let a = counts.get("a-0").copied().unwrap_or(0);
    let b = counts.get("b-0").copied().unwrap_or(0);
    eprintln!("70/30 split over 1000 requests: {counts:?}");
    assert_eq!(a + b, 1000, "{counts:?}");
    assert!(
        (650..=750).contains(&a),
        "70/30 split within ±5%: {counts:?}"
    );
    // Each request was picked by one picker, and went through the cluster of that picker's
    // pool: the weighted choice made before the picker ran is made again, identically, when
    // the picker's route cache clear re-matches the route.
    let streams = stack.pool("a").picker_streams() + stack.pool("b").picker_streams();
    assert_eq!(streams, 1000);
    for (pool, served) in [("a", a), ("b", b)] {
        let stat = format!("cluster.pool_default_{pool}.upstream_rq_total");
        assert_eq!(
            stack.stat(&stat).await,
            Some(u64::try_from(served).unwrap())
        );
        assert_eq!(
            stack.pool(pool).picker_streams(),
            u64::try_from(served).unwrap()
        );
    }

    // Hot change: all traffic to b, no restart.
    let pid = stack.envoy.pid();
    let changed = Instant::now();
    stack.update_route(&route_yaml(&[("m", &[("a", 0), ("b", 100)])]));
    let applied = loop {
        let response = stack.chat("m").await;
        if backend_of(&response) == "b-0" {
            let at = changed.elapsed();
            // Not one lucky draw: the next 50 all go to b.
            let counts = split(&stack, "m", 50).await;
            if counts.get("b-0") == Some(&50) {
                break at;
            }
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the weight change was not applied within 1 s; log:\n{}",
            stack.envoy.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("weight change applied after {applied:?}");
    assert!(
        applied < Duration::from_secs(1),
        "applied after {applied:?}"
    );
    assert_eq!(stack.envoy.pid(), pid, "Envoy must not restart");
}

#[tokio::test]
async fn e2e_translate_new_pool_and_rule_apply_without_restart() {
    let pools = vec![
        ("a", TestPool::start("a", 1).await),
        ("b", TestPool::start("b", 1).await),
    ];
    let route_a = route_yaml(&[("model-a", &[("a", 1)])]);
    let mut stack = Stack::start(pools, pool_yaml("a", "FailClose"), &route_a).await;
    assert_eq!(stack.chat("model-b").await.status, StatusCode::NOT_FOUND);
    let pid = stack.envoy.pid();

    // A new pool (new clusters, health-checked picker included) and a rule for it.
    let changed = Instant::now();
    let both = route_yaml(&[("model-a", &[("a", 1)]), ("model-b", &[("b", 1)])]);
    stack.update(
        pool_yaml("a", "FailClose") + &pool_yaml("b", "FailOpen"),
        &both,
    );
    loop {
        let response = stack.chat("model-b").await;
        if backend_of(&response) == "b-0" && stack.pool("b").picker_streams() > 0 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "pool b not served 2 s after the change: {} {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("new pool served after {:?}", changed.elapsed());
    assert_eq!(backend_of(&stack.chat("model-a").await), "a-0");
    assert_eq!(stack.envoy.pid(), pid, "Envoy must not restart");
    assert_eq!(stack.envoy.rejected_updates().await.unwrap(), 0);

    // A route Envoy refuses (RE2 cannot compile the expression) leaves the last good one in
    // force, and the refusal is counted where a caller can see it.
    let broken = both.replace(
        "- matches:\n    - headers:",
        "- matches:\n    - path: {type: RegularExpression, value: '(unclosed'}\n      headers:",
    );
    stack.update_route(&broken);
    let written = Instant::now();
    while stack.envoy.rejected_updates().await.unwrap() == 0 {
        assert!(
            written.elapsed() < Duration::from_secs(2),
            "no rejection counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(backend_of(&stack.chat("model-b").await), "b-0");
}

#[tokio::test]
async fn e2e_translate_picker_down_fail_open_serves_and_fail_close_rejects() {
    let pools = vec![
        ("open", TestPool::without_picker("open", 2).await),
        ("closed", TestPool::without_picker("closed", 1).await),
        ("live", TestPool::start("live", 2).await),
    ];
    let yaml = pool_yaml("open", "FailOpen")
        + &pool_yaml("closed", "FailClose")
        + &pool_yaml("live", "FailOpen");
    let route = route_yaml(&[
        ("open", &[("open", 1)]),
        ("closed", &[("closed", 1)]),
        ("live", &[("live", 1)]),
    ]);
    let stack = Stack::start(pools, yaml, &route).await;

    // FailClose: 5xx within a second, never reaching the pool.
    for _ in 0..5 {
        let started = Instant::now();
        let response = stack.chat("closed").await;
        assert!(response.status.is_server_error(), "{}", response.status);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(stack.pool("closed").backends[0].requests(), 0);

    // FailOpen: served by the pool's own endpoints, round robin, once the health check has
    // seen the picker down (it starts unhealthy, so at once here).
    let mut served = BTreeMap::new();
    for _ in 0..10 {
        let response = stack.chat("open").await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        *served.entry(backend_of(&response).to_owned()).or_insert(0) += 1;
    }
    assert_eq!(
        served,
        BTreeMap::from([("open-0".to_owned(), 5), ("open-1".to_owned(), 5)])
    );

    // A client cannot pick the host itself: its destination header is dropped on the way in,
    // so the request still takes the fallback (a spoofed header would otherwise reach
    // ORIGINAL_DST, which connects wherever it points).
    let elsewhere = stack.pool("closed").backends[0].addr().to_string();
    let body = json!({"model": "open"}).to_string();
    for _ in 0..4 {
        let response = stack
            .client
            .post(
                &stack.envoy.url("/v1/completions"),
                &[("x-gateway-destination-endpoint", elsewhere.as_str())],
                body.clone(),
            )
            .await
            .unwrap();
        assert!(
            backend_of(&response).starts_with("open-"),
            "{}",
            response.text()
        );
    }
    assert_eq!(stack.pool("closed").backends[0].requests(), 0);

    // FailOpen with its picker up: the picker's choice wins over the fallback's round robin.
    for _ in 0..4 {
        let response = stack.chat("live").await;
        assert_eq!(backend_of(&response), "live-0", "{}", response.text());
    }
    assert_eq!(stack.pool("live").backends[1].requests(), 0);
    assert_eq!(stack.pool("live").picker_streams(), 4);
}

#[tokio::test]
async fn e2e_translate_picker_dying_fail_open_recovers_fail_close_rejects() {
    let pools = vec![
        ("open", TestPool::start("open", 2).await),
        ("closed", TestPool::start("closed", 1).await),
    ];
    let yaml = pool_yaml("open", "FailOpen") + &pool_yaml("closed", "FailClose");
    let route = route_yaml(&[("open", &[("open", 1)]), ("closed", &[("closed", 1)])]);
    let mut stack = Stack::start(pools, yaml, &route).await;
    // While the pickers run they pick (always the first endpoint here).
    for model in ["open", "closed"] {
        let response = stack.chat(model).await;
        assert_eq!(
            backend_of(&response),
            format!("{model}-0"),
            "{}",
            response.text()
        );
    }

    stack.kill_picker("open");
    stack.kill_picker("closed");
    for _ in 0..5 {
        let started = Instant::now();
        let response = stack.chat("closed").await;
        assert!(response.status.is_server_error(), "{}", response.status);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // FailOpen: the first request to find the picker gone fails (Envoy cannot fail open once
    // it streamed the body), which ejects the picker; from then on the fallback serves.
    let killed = Instant::now();
    let mut failed = 0;
    loop {
        let response = stack.chat("open").await;
        if response.status == StatusCode::OK {
            break;
        }
        failed += 1;
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "no fallback 2 s after the picker died; {failed} failures"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One, unless the ejection reached the other Envoy worker late (it is posted across
    // threads); without the ejection it is every request for a health-check interval (~9).
    assert!(
        failed <= 3,
        "{failed} requests failed before the fallback took over"
    );
    // Round robin over the pool (per Envoy worker), not the dead picker's choice.
    let counts = split(&stack, "open", 10).await;
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        ["open-0", "open-1"],
        "{counts:?}"
    );
}

#[tokio::test]
async fn e2e_translate_route_naming_a_missing_pool_answers_500() {
    let pools = vec![("a", TestPool::start("a", 1).await)];
    let route = route_yaml(&[
        ("gone", &[("missing", 1)]),
        ("half", &[("a", 1), ("missing", 1)]),
    ]);
    let stack = Stack::start(pools, pool_yaml("a", "FailClose"), &route).await;
    let config = stack.update_route(&route);
    assert_eq!(config.warnings().len(), 2, "{:?}", config.warnings());

    let response = stack.chat("gone").await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response
            .text()
            .contains("InferencePool default/missing does not exist"),
        "{}",
        response.text()
    );

    // Half the weight names the missing pool: that half gets 500, the other half is served.
    let mut statuses = BTreeMap::new();
    for _ in 0..60 {
        let response = stack.chat("half").await;
        *statuses.entry(response.status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [200, 500],
        "{statuses:?}"
    );
    assert!(statuses[&500] >= 15 && statuses[&200] >= 15, "{statuses:?}");
}

#[tokio::test]
async fn e2e_translate_quickstart_loads_in_envoy() {
    use switchyard_local::plan::{PlanOptions, plan};
    use switchyard_local::{FILE_NAME, LocalEndpoints};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let manifests = Manifests::load(&dir).unwrap();
    let endpoints = LocalEndpoints::load(&dir.join(FILE_NAME)).unwrap();
    // Nothing runs behind the gateway: every process port is a free one nobody listens on.
    let options = PlanOptions {
        first_port: ports::free_port().unwrap(),
        ..PlanOptions::default()
    };
    let mut plan = plan(&endpoints, &manifests, &options).unwrap();
    plan.gateway.listener = SocketAddr::from(([127, 0, 0, 1], 0));
    plan.gateway.admin = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = translate(&manifests, &plan.gateway).unwrap();
    let temp = tempfile::tempdir().unwrap();
    let config_dir = ConfigDir::create(&temp.path().join("envoy")).unwrap();
    config_dir.write(&config).unwrap();
    let envoy = GatewayEnvoy::start(
        &switchyard_conformance::envoy::locate().unwrap(),
        &config_dir,
        &temp.path().join("envoy.log"),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    // BBR is down and fails closed: 500 for everything but a request no filter processes.
    let client = HttpClient::new();
    let response = client
        .post(
            &envoy.url("/v1/chat/completions"),
            &[],
            r#"{"model":"Qwen/Qwen3-32B"}"#,
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    let stats = client
        .get(&format!("http://{}/clusters", envoy.admin_addr()), &[])
        .await
        .unwrap()
        .text();
    for cluster in [
        "pool_default_vllm-llama3-8b::",
        "epp_default_vllm-qwen3-32b-canary::",
        "pool_default_vllm-qwen3-32b_fallback::",
        "bbr::",
    ] {
        assert!(
            stats.contains(cluster),
            "{cluster} missing from /clusters:\n{stats}"
        );
    }
}
