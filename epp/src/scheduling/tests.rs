use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::datastore::EndpointMetrics;

pub(crate) fn endpoint(i: u8, metrics: EndpointMetrics) -> Endpoint {
    let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 8000);
    let mut endpoint = Endpoint::new(&format!("pod-{i}-rank-0"), &format!("pod-{i}"), address);
    endpoint.metrics = metrics;
    endpoint
}

pub(crate) fn pool(metrics: &[EndpointMetrics]) -> PoolSnapshot {
    PoolSnapshot {
        endpoints: metrics
            .iter()
            .enumerate()
            .map(|(i, m)| endpoint(i as u8 + 1, m.clone()))
            .collect(),
        ..PoolSnapshot::default()
    }
}

pub(crate) fn request<'a>(prompt: &'a [u8]) -> RequestView<'a> {
    RequestView {
        target_model: "m",
        prompt,
        cache_salt: "",
        subset: None,
        test_endpoint_selection: None,
        now: Instant::now(),
    }
}

fn queue(q: u32) -> EndpointMetrics {
    EndpointMetrics {
        waiting_queue: q,
        ..EndpointMetrics::default()
    }
}

fn yaml(text: &str) -> Scheduler {
    Scheduler::new(SchedulerConfig::from_yaml(text).unwrap())
}

#[test]
fn default_config_is_upstreams() {
    let config = SchedulerConfig::default();
    let scorers: Vec<(&str, f64)> = config
        .scorers
        .iter()
        .map(|(s, w)| (s.type_name(), *w))
        .collect();
    assert_eq!(
        scorers,
        [
            ("queue-scorer", 2.0),
            ("kv-cache-utilization-scorer", 2.0),
            ("prefix-cache-scorer", 3.0),
            ("lora-affinity-scorer", 3.0)
        ]
    );
    let filters: Vec<&str> = config.filters.iter().map(|f| f.type_name()).collect();
    assert_eq!(
        filters,
        ["prefix-cache-affinity-filter", "utilization-detector"]
    );
    assert_eq!(config.picker, plugins::Picker::default());
    assert_eq!(config.prefix, Some(PrefixParameters::default()));
}

#[test]
fn picks_the_least_loaded() {
    let snapshot = pool(&[queue(5), queue(0), queue(9)]);
    let pick = Scheduler::default().pick(&snapshot, &request(b"")).unwrap();
    assert_eq!(pick.endpoints, [snapshot.endpoints[1].address]);
    assert_eq!(pick.destination(), "10.0.0.2:8000");
}

#[test]
fn reservations_spread_a_burst_on_one_snapshot() {
    let snapshot = pool(&vec![queue(0); 10]);
    let scheduler = Scheduler::default();
    let picks: Vec<Pick> = (0..10)
        .map(|_| scheduler.pick(&snapshot, &request(b"")).unwrap())
        .collect();
    let distinct: HashSet<SocketAddr> = picks.iter().map(|p| p.endpoints[0]).collect();
    assert_eq!(
        distinct.len(),
        10,
        "each pick must see the load of the ones before"
    );
    drop(picks);
    assert!(snapshot.endpoints.iter().all(|e| e.load.in_flight() == 0));
}

#[test]
fn ties_are_broken_at_random() {
    let snapshot = pool(&vec![queue(0); 4]);
    let scheduler = Scheduler::default();
    // Each pick is dropped at once, so all four stay tied every time.
    let seen: HashSet<SocketAddr> = (0..200)
        .map(|_| scheduler.pick(&snapshot, &request(b"")).unwrap().endpoints[0])
        .collect();
    assert_eq!(seen.len(), 4);
}

#[test]
fn never_picks_unready_and_empty_pool_is_503() {
    let mut snapshot = pool(&[queue(0), queue(100)]);
    snapshot.endpoints[0].ready = false;
    let pick = Scheduler::default().pick(&snapshot, &request(b"")).unwrap();
    assert_eq!(pick.endpoints, [snapshot.endpoints[1].address]);
    snapshot.endpoints[1].ready = false;
    let err = Scheduler::default()
        .pick(&snapshot, &request(b""))
        .unwrap_err();
    assert_eq!((err, err.http_status()), (NoCapacity::EmptyPool, 503));
    let err = Scheduler::default()
        .pick(&PoolSnapshot::default(), &request(b""))
        .unwrap_err();
    assert_eq!(err, NoCapacity::EmptyPool);
}

#[test]
fn subset_hint_restricts_by_ip_port_or_ip() {
    let mut snapshot = pool(&[queue(0), queue(50), queue(60)]);
    snapshot.endpoints[2].address = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 9000);
    let scheduler = Scheduler::default();
    let mut req = request(b"");
    let hint = vec!["10.0.0.2:8000".to_owned()];
    req.subset = Some(&hint);
    assert_eq!(
        scheduler.pick(&snapshot, &req).unwrap().endpoints,
        [snapshot.endpoints[1].address]
    );
    let hint = vec![
        "::1".to_owned(),
        "garbage".to_owned(),
        "10.0.0.9:8000".to_owned(),
    ];
    req.subset = Some(&hint);
    let pick = scheduler.pick(&snapshot, &req).unwrap();
    assert_eq!(pick.destination(), "[::1]:9000");
    let hint = vec!["10.0.0.2:9999".to_owned()];
    req.subset = Some(&hint);
    assert_eq!(
        scheduler.pick(&snapshot, &req).unwrap_err(),
        NoCapacity::EmptySubset
    );
    let empty: Vec<String> = Vec::new();
    req.subset = Some(&empty);
    let err = scheduler.pick(&snapshot, &req).unwrap_err();
    assert_eq!((err, err.http_status()), (NoCapacity::EmptySubset, 503));
}

#[test]
fn fallback_list_is_ordered_and_distinct() {
    let scheduler = yaml(
        "plugins:\n- type: queue-scorer\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 3}\n\
         schedulingProfiles:\n- name: default\n  plugins: [{pluginRef: queue-scorer}, {pluginRef: max-score-picker}]\n",
    );
    let snapshot = pool(&[queue(3), queue(1), queue(2), queue(9)]);
    let pick = scheduler.pick(&snapshot, &request(b"")).unwrap();
    assert_eq!(
        pick.destination(),
        "10.0.0.2:8000,10.0.0.3:8000,10.0.0.1:8000"
    );
    // More requested than exist: as many as there are, each once.
    let small = pool(&[queue(0), queue(0)]);
    let pick = scheduler.pick(&small, &request(b"")).unwrap();
    assert_eq!(pick.endpoints.len(), 2);
    assert_ne!(pick.endpoints[0], pick.endpoints[1]);
}

#[test]
fn lora_affinity_prefers_loaded_then_room_then_waiting() {
    let adapters = |active: &[&str], waiting: &[&str], max| EndpointMetrics {
        active_loras: active.iter().map(|a| Box::from(*a)).collect(),
        waiting_loras: waiting.iter().map(|a| Box::from(*a)).collect(),
        max_loras: Some(max),
        ..EndpointMetrics::default()
    };
    let scheduler = yaml(
        "plugins: [{type: lora-affinity-scorer}]\nschedulingProfiles: [{name: p, plugins: [{pluginRef: lora-affinity-scorer}]}]\n",
    );
    let mut req = request(b"");
    req.target_model = "sql";
    let full_waiting = adapters(&["a"], &["sql"], 2);
    let room = adapters(&["a"], &[], 2);
    let loaded = adapters(&["a", "sql"], &[], 2);
    let none = adapters(&["a", "b"], &[], 2);
    for (metrics, winner) in [
        (
            vec![
                none.clone(),
                full_waiting.clone(),
                room.clone(),
                loaded.clone(),
            ],
            3,
        ),
        (vec![none.clone(), full_waiting.clone(), room.clone()], 2),
        (vec![none.clone(), full_waiting.clone()], 1),
    ] {
        let snapshot = pool(&metrics);
        let pick = scheduler.pick(&snapshot, &req).unwrap();
        assert_eq!(pick.endpoints[0], snapshot.endpoints[winner].address);
    }
}

#[test]
fn prefix_sticks_to_the_server_that_saw_it() {
    let snapshot = pool(&vec![queue(0); 8]);
    let scheduler = Scheduler::default();
    let prompt = vec![b'x'; 4096];
    let first = scheduler
        .pick(&snapshot, &request(&prompt))
        .unwrap()
        .endpoints[0];
    for _ in 0..20 {
        // Each pick completes before the next, so only the prefix differs.
        assert_eq!(
            scheduler
                .pick(&snapshot, &request(&prompt))
                .unwrap()
                .endpoints[0],
            first
        );
    }
    // A different model does not share the prefix: it may land anywhere, and
    // its own blocks stick from then on.
    let mut other = request(&prompt);
    other.target_model = "lora-x";
    let second = scheduler.pick(&snapshot, &other).unwrap().endpoints[0];
    assert_eq!(
        scheduler.pick(&snapshot, &other).unwrap().endpoints[0],
        second
    );
}

#[test]
fn load_overrides_the_prefix_when_the_warm_server_saturates() {
    let mut snapshot = pool(&[queue(0), queue(0)]);
    let scheduler = Scheduler::default();
    let prompt = vec![b'y'; 1024];
    let warm = scheduler
        .pick(&snapshot, &request(&prompt))
        .unwrap()
        .endpoints[0];
    let warm_index = snapshot
        .endpoints
        .iter()
        .position(|e| e.address == warm)
        .unwrap();
    // Past the affinity filter's queue bound (16) the warm server is not sticky; then
    // prefix 3 × 1 vs queue 2 × 1 + KV 2 × 1: a full, busy warm server loses.
    snapshot.endpoints[warm_index].metrics = EndpointMetrics {
        waiting_queue: 20,
        kv_cache_usage: 1.0,
        ..EndpointMetrics::default()
    };
    let pick = scheduler.pick(&snapshot, &request(&prompt)).unwrap();
    assert_ne!(pick.endpoints[0], warm);
}

#[test]
fn utilization_filter_drops_saturated_unless_all_are() {
    let scheduler = yaml(
        "plugins: [{type: utilization-detector, parameters: {metricsStalenessThreshold: 1h}}, {type: queue-scorer}]\n\
         schedulingProfiles: [{name: p, plugins: [{pluginRef: utilization-detector}, {pluginRef: queue-scorer}]}]\n",
    );
    let mut snapshot = pool(&[
        queue(6),
        EndpointMetrics {
            waiting_queue: 7,
            kv_cache_usage: 0.1,
            ..EndpointMetrics::default()
        },
    ]);
    let now = Instant::now();
    for e in &mut snapshot.endpoints {
        e.scraped_at = Some(now);
    }
    snapshot.endpoints[1].metrics.waiting_queue = 1;
    snapshot.endpoints[1].metrics.kv_cache_usage = 0.9;
    let mut req = request(b"");
    req.now = now;
    // Both saturated (queue 6 > 5; KV 0.9 > 0.8): everyone kept, least queue wins.
    assert_eq!(
        scheduler.pick(&snapshot, &req).unwrap().endpoints[0],
        snapshot.endpoints[1].address
    );
    snapshot.endpoints[0].metrics.waiting_queue = 4;
    // Only the second is saturated now (KV 0.9 > 0.8): it is dropped even
    // though its queue is shorter.
    assert_eq!(
        scheduler.pick(&snapshot, &req).unwrap().endpoints[0],
        snapshot.endpoints[0].address
    );
}

#[test]
fn header_based_testing_filter_pins_endpoints() {
    let scheduler = yaml(
        "plugins: [{type: header-based-testing-filter}, {type: queue-scorer}]\n\
         schedulingProfiles: [{name: p, plugins: [{pluginRef: header-based-testing-filter}, {pluginRef: queue-scorer}]}]\n",
    );
    let snapshot = pool(&[queue(0), queue(9)]);
    let mut req = request(b"");
    req.test_endpoint_selection = Some("10.0.0.2");
    assert_eq!(
        scheduler.pick(&snapshot, &req).unwrap().endpoints[0],
        snapshot.endpoints[1].address
    );
    req.test_endpoint_selection = Some("10.9.9.9:1");
    let err = scheduler.pick(&snapshot, &req).unwrap_err();
    assert_eq!((err, err.http_status()), (NoCapacity::AllFiltered, 429));
}

#[test]
fn weighted_and_random_pickers_only_return_members() {
    for picker in ["random-picker", "weighted-random-picker"] {
        let scheduler = yaml(&format!(
            "plugins: [{{type: queue-scorer}}, {{type: {picker}, parameters: {{maxNumOfEndpoints: 2}}}}]\n\
             schedulingProfiles: [{{name: p, plugins: [{{pluginRef: queue-scorer}}, {{pluginRef: {picker}}}]}}]\n"
        ));
        let snapshot = pool(&[queue(0), queue(3), queue(1)]);
        for _ in 0..50 {
            let pick = scheduler.pick(&snapshot, &request(b"")).unwrap();
            assert_eq!(pick.endpoints.len(), 2);
            assert_ne!(pick.endpoints[0], pick.endpoints[1]);
            assert!(
                pick.endpoints
                    .iter()
                    .all(|a| snapshot.endpoint_at(*a).is_some())
            );
        }
    }
}

#[test]
fn stale_snapshot_endpoints_keep_their_counters() {
    let snapshot = pool(&[queue(0)]);
    let load = Arc::clone(&snapshot.endpoints[0].load);
    let pick = Scheduler::default()
        .pick(&snapshot, &request(b"abc"))
        .unwrap();
    assert_eq!(load.in_flight(), 1);
    drop(pick);
    assert_eq!(load.in_flight(), 0);
}

mod config_files;
mod health;
mod loader;
mod upstream_plugins;
