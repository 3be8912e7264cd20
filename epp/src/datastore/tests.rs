use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use switchyard_api::protocol::ACTIVE_PORTS_ANNOTATION;

use super::*;
use crate::datastore::EndpointMetrics;

fn scrape(endpoint: &str, metrics: EndpointMetrics, scraped_at: Instant) -> Scrape<'_> {
    Scrape {
        endpoint,
        metrics,
        scraped_at,
        dispatch_mark: 0,
    }
}

fn pod(name: &str, ip: IpAddr) -> PodView {
    PodView {
        name: name.into(),
        ip: Some(ip),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        ready: true,
        deleting: false,
    }
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7));

#[test]
fn one_endpoint_per_ready_pod_and_port() {
    let pods = [
        pod("a", V4),
        pod("b", V6),
        PodView {
            ready: false,
            ..pod("c", V4)
        },
        PodView {
            deleting: true,
            ..pod("d", V4)
        },
        PodView {
            ip: None,
            ..pod("e", V4)
        },
    ];
    let (snapshot, errors) = PoolSnapshot::default().rebuild(&pods, &[8000, 8001]);
    assert!(errors.is_empty());
    let names: Vec<&str> = snapshot.endpoints.iter().map(|e| &*e.name).collect();
    assert_eq!(names, ["a-rank-0", "a-rank-1", "b-rank-0", "b-rank-1"]);
    assert_eq!(snapshot.endpoints[3].address, SocketAddr::new(V6, 8001));
    assert_eq!(snapshot.endpoints[3].address.to_string(), "[fd00::7]:8001");
}

#[test]
fn active_ports_annotation_restricts_ports() {
    let mut p = pod("a", V4);
    p.annotations
        .insert(ACTIVE_PORTS_ANNOTATION.into(), "8001".into());
    let (snapshot, _) = PoolSnapshot::default().rebuild(&[p], &[8000, 8001]);
    let names: Vec<&str> = snapshot.endpoints.iter().map(|e| &*e.name).collect();
    assert_eq!(names, ["a-rank-1"]);
}

#[test]
fn bad_active_ports_annotation_is_reported_and_the_pod_skipped() {
    let mut bad = pod("bad", V4);
    bad.annotations
        .insert(ACTIVE_PORTS_ANNOTATION.into(), "8000,http".into());
    let (snapshot, errors) = PoolSnapshot::default().rebuild(&[bad, pod("ok", V6)], &[8000]);
    assert_eq!(snapshot.endpoints.len(), 1);
    let text = errors[0].to_string();
    assert!(
        text.contains("pod bad") && text.contains("`http`") && text.contains("comma-separated"),
        "{text}"
    );
}

#[test]
fn rebuild_keeps_metrics_and_load_of_surviving_endpoints() {
    let (first, _) = PoolSnapshot::default().rebuild(&[pod("a", V4)], &[8000]);
    let now = Instant::now();
    let metrics = EndpointMetrics {
        waiting_queue: 4,
        ..EndpointMetrics::default()
    };
    let first = first.with_metrics([
        scrape("a-rank-0", metrics.clone(), now),
        scrape("gone", metrics.clone(), now),
    ]);
    let reservation = first.endpoints[0].load.reserve(10);
    let (second, _) = first.rebuild(&[pod("a", V4), pod("b", V4)], &[8000]);
    assert_eq!(second.endpoints[0].metrics, metrics);
    assert_eq!(second.endpoints[0].load.in_flight(), 1);
    drop(reservation);
    assert_eq!(second.endpoints[0].load.in_flight(), 0);
    // A pod that came back with a new IP starts from scratch.
    let (third, _) = second.rebuild(&[pod("a", V6)], &[8000]);
    assert_eq!(third.endpoints[0].metrics, EndpointMetrics::default());
}

#[test]
fn staleness() {
    let now = Instant::now();
    let mut endpoint = Endpoint::new("a", "a", SocketAddr::new(V4, 1));
    assert!(endpoint.is_stale(now, Duration::from_secs(1)));
    endpoint.scraped_at = Some(now);
    let later = now + Duration::from_millis(300);
    assert_eq!(
        endpoint.metrics_age(later),
        Some(Duration::from_millis(300))
    );
    assert!(endpoint.is_stale(later, Duration::from_millis(200)));
    assert!(!endpoint.is_stale(later, Duration::from_millis(400)));
    // A clock that went backwards reads as age zero, not a panic.
    assert_eq!(
        endpoint.metrics_age(now - Duration::from_millis(5)),
        Some(Duration::ZERO)
    );
}

#[test]
fn datastore_publishes_snapshots() {
    let store = Datastore::default();
    assert!(store.load().endpoints.is_empty());
    let mut snapshot = PoolSnapshot::default();
    snapshot.objectives.insert("critical".into(), 10);
    store.publish(snapshot);
    let loaded = store.load();
    assert_eq!(loaded.priority(Some("critical")), 10);
    assert_eq!(loaded.priority(Some("unknown")), 0);
    assert_eq!(loaded.priority(None), 0);
}

#[test]
fn prefix_table_is_sized_from_the_servers_kv_cache() {
    let (snapshot, _) = PoolSnapshot::default().rebuild(&[pod("a", V4)], &[8000]);
    // Sizes are rounded up to a power of two (M12: a wobbling figure keeps its table).
    assert_eq!(snapshot.endpoints[0].prefix.capacity(), 32_768);
    let now = Instant::now();
    let metrics = EndpointMetrics {
        cache_num_blocks: Some(2810),
        ..EndpointMetrics::default()
    };
    let tuned = snapshot.with_metrics([scrape("a-rank-0", metrics.clone(), now)]);
    assert_eq!(tuned.endpoints[0].prefix.capacity(), 4096);
    // The same figure again keeps the table (and what it learnt).
    tuned.endpoints[0].prefix.insert(42);
    let again = tuned.with_metrics([scrape("a-rank-0", metrics, now)]);
    assert!(again.endpoints[0].prefix.contains(42));
    // An absurd figure is capped.
    let huge = EndpointMetrics {
        cache_num_blocks: Some(u64::MAX),
        ..EndpointMetrics::default()
    };
    let capped = again.with_metrics([scrape("a-rank-0", huge, now)]);
    assert_eq!(capped.endpoints[0].prefix.capacity(), 1 << 24);
}

#[test]
fn published_scrapes_absorb_the_dispatches_they_saw() {
    let (snapshot, _) = PoolSnapshot::default().rebuild(&[pod("a", V4)], &[8000]);
    let load = std::sync::Arc::clone(&snapshot.endpoints[0].load);
    let _seen = load.reserve(1);
    let mark = load.mark_scrape_start();
    let _unseen = load.reserve(1);
    assert_eq!(load.unseen(), 2);
    let scraped = Scrape {
        dispatch_mark: mark,
        ..scrape("a-rank-0", EndpointMetrics::default(), Instant::now())
    };
    let _next = snapshot.with_metrics([scraped]);
    assert_eq!(load.unseen(), 1);
}

fn sized(sizing: snapshot::PrefixSizing) -> PoolSnapshot {
    PoolSnapshot {
        prefix_sizing: sizing,
        ..PoolSnapshot::default()
    }
}

fn blocks(n: u64) -> EndpointMetrics {
    EndpointMetrics {
        cache_num_blocks: Some(n),
        ..EndpointMetrics::default()
    }
}

#[test]
fn m12_lru_capacity_per_server_sizes_the_tables() {
    let base = sized(snapshot::PrefixSizing {
        capacity_per_server: 1000,
        ..Default::default()
    });
    let (snapshot, _) = base.rebuild(&[pod("a", V4)], &[8000]);
    assert_eq!(snapshot.endpoints[0].prefix.capacity(), 1024);
}

#[test]
fn m12_with_auto_tune_off_the_servers_block_count_is_ignored() {
    let base = sized(snapshot::PrefixSizing {
        capacity_per_server: 1000,
        auto_tune: false,
        ..Default::default()
    });
    let (snapshot, _) = base.rebuild(&[pod("a", V4)], &[8000]);
    let scraped = snapshot.with_metrics([scrape("a-rank-0", blocks(1 << 30), Instant::now())]);
    assert_eq!(scraped.endpoints[0].prefix.capacity(), 1024);
}

#[test]
fn m12_the_pool_budget_bounds_every_table_together() {
    let budget = 8 * 4096;
    let base = sized(snapshot::PrefixSizing {
        pool_bytes: budget,
        ..Default::default()
    });
    let pods: Vec<PodView> = (1..=4)
        .map(|i| pod(&format!("p{i}"), IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))))
        .collect();
    let (snapshot, _) = base.rebuild(&pods, &[8000]);
    let now = Instant::now();
    let scrapes: Vec<Scrape<'_>> = snapshot
        .endpoints
        .iter()
        .map(|e| scrape(&e.name, blocks(u64::MAX), now))
        .collect();
    let scraped = snapshot.with_metrics(scrapes);
    let total: usize = scraped
        .endpoints
        .iter()
        .map(|e| e.prefix.allocated_bytes())
        .sum();
    assert!(total <= budget, "{total} bytes of prefix tables");
    assert!(
        scraped
            .endpoints
            .iter()
            .all(|e| e.prefix.capacity() == 1024)
    );
}

#[test]
fn m12_a_wobbling_block_count_keeps_the_table_and_its_affinity() {
    let (snapshot, _) = PoolSnapshot::default().rebuild(&[pod("a", V4)], &[8000]);
    let now = Instant::now();
    let first = snapshot.with_metrics([scrape("a-rank-0", blocks(3000), now)]);
    first.endpoints[0].prefix.insert(7);
    for wobble in [3010, 2990, 3500] {
        let next = first.with_metrics([scrape("a-rank-0", blocks(wobble), now)]);
        assert!(next.endpoints[0].prefix.contains(7), "{wobble}");
    }
}
