//! Property tests of the scheduler's invariants over random pools.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use proptest::prelude::*;
use switchyard_epp::datastore::EndpointMetrics;
use switchyard_epp::datastore::{Endpoint, PoolSnapshot};
use switchyard_epp::scheduling::{NoCapacity, RequestView, Scheduler, SchedulerConfig};

#[derive(Clone, Debug)]
struct Spec {
    ready: bool,
    v6: bool,
    queue: u32,
    kv: f64,
    loras: Vec<u8>,
    waiting: Vec<u8>,
    max_loras: u32,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        any::<bool>(),
        0u32..20,
        0.0f64..=1.0,
        prop::collection::vec(0u8..4, 0..3),
        prop::collection::vec(0u8..4, 0..2),
        0u32..4,
    )
        .prop_map(|(ready, v6, queue, kv, loras, waiting, max_loras)| Spec {
            ready,
            v6,
            queue,
            kv,
            loras,
            waiting,
            max_loras,
        })
}

fn adapter(i: u8) -> Box<str> {
    format!("lora-{i}").into()
}

fn build(specs: &[Spec]) -> PoolSnapshot {
    let endpoints = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = u8::try_from(i).expect("fewer than 256 endpoints");
            let ip = if s.v6 {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(n)))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
            };
            let mut e = Endpoint::new(
                &format!("p{i}-rank-0"),
                &format!("p{i}"),
                SocketAddr::new(ip, 8000),
            );
            e.ready = s.ready;
            e.metrics = EndpointMetrics {
                waiting_queue: s.queue,
                kv_cache_usage: s.kv,
                active_loras: s.loras.iter().copied().map(adapter).collect(),
                waiting_loras: s.waiting.iter().copied().map(adapter).collect(),
                max_loras: Some(s.max_loras),
                ..EndpointMetrics::default()
            };
            e
        })
        .collect();
    PoolSnapshot {
        endpoints,
        ..PoolSnapshot::default()
    }
}

fn request<'a>(model: &'a str, prompt: &'a [u8], subset: Option<&'a [String]>) -> RequestView<'a> {
    RequestView {
        target_model: model,
        prompt,
        cache_salt: "",
        subset,
        test_endpoint_selection: None,
        now: Instant::now(),
    }
}

fn scheduler(picker: &str, max: usize, scorers: &[&str]) -> Scheduler {
    let mut plugins: Vec<String> = scorers.iter().map(|s| format!("{{type: {s}}}")).collect();
    plugins.push(format!(
        "{{type: {picker}, parameters: {{maxNumOfEndpoints: {max}}}}}"
    ));
    let refs: Vec<String> = scorers
        .iter()
        .chain(std::iter::once(&picker))
        .map(|s| format!("{{pluginRef: {s}}}"))
        .collect();
    let text = format!(
        "plugins: [{}]\nschedulingProfiles: [{{name: p, plugins: [{}]}}]\n",
        plugins.join(", "),
        refs.join(", ")
    );
    Scheduler::new(SchedulerConfig::from_yaml(&text).expect("test config is valid"))
}

proptest! {
    #[test]
    fn only_ready_members_inside_the_subset_distinct(
        specs in prop::collection::vec(spec(), 0..24),
        subset_pick in prop::option::of(prop::collection::vec((0usize..30, any::<bool>()), 0..6)),
        picker in prop::sample::select(vec!["max-score-picker", "random-picker", "weighted-random-picker"]),
        max in 1usize..6,
        prompt in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let snapshot = build(&specs);
        // Subset entries: addresses of random indices (some out of range), as ip:port or ip.
        let subset: Option<Vec<String>> = subset_pick.map(|entries| entries.iter().map(|(i, with_port)| {
            let ip = match specs.get(*i) {
                Some(s) if s.v6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::try_from(*i).unwrap())),
                _ => IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(*i).unwrap())),
            };
            if *with_port { SocketAddr::new(ip, 8000).to_string() } else { ip.to_string() }
        }).collect());
        let eligible: HashSet<SocketAddr> = snapshot.endpoints.iter()
            .filter(|e| e.ready)
            .filter(|e| subset.as_ref().is_none_or(|s| s.iter().any(|entry| {
                entry.parse::<SocketAddr>().map(|a| a == e.address)
                    .unwrap_or_else(|_| entry.parse::<IpAddr>().is_ok_and(|ip| ip == e.address.ip()))
            })))
            .map(|e| e.address)
            .collect();
        let scheduler = scheduler(picker, max, &["queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer", "lora-affinity-scorer"]);
        match scheduler.pick(&snapshot, &request("lora-1", &prompt, subset.as_deref())) {
            Ok(pick) => {
                prop_assert_eq!(pick.endpoints.len(), max.min(eligible.len()));
                let distinct: HashSet<SocketAddr> = pick.endpoints.iter().copied().collect();
                prop_assert_eq!(distinct.len(), pick.endpoints.len());
                prop_assert!(distinct.is_subset(&eligible));
            }
            Err(NoCapacity::EmptyPool) => prop_assert!(snapshot.endpoints.iter().all(|e| !e.ready)),
            Err(NoCapacity::EmptySubset) => prop_assert!(eligible.is_empty() && subset.is_some()),
            Err(NoCapacity::AllFiltered) => prop_assert!(false, "no filter configured"),
        }
    }

    #[test]
    fn prefix_sticks_until_the_warm_server_saturates(
        n in 2usize..12,
        prompt in prop::collection::vec(any::<u8>(), 64..4096),
        model in "[a-z]{1,8}",
    ) {
        let specs = vec![Spec { ready: true, v6: false, queue: 0, kv: 0.0, loras: vec![], waiting: vec![], max_loras: 0 }; n];
        let mut snapshot = build(&specs);
        let scheduler = Scheduler::default();
        let first = scheduler.pick(&snapshot, &request(&model, &prompt, None)).unwrap().endpoints[0];
        for _ in 0..5 {
            let again = scheduler.pick(&snapshot, &request(&model, &prompt, None)).unwrap().endpoints[0];
            prop_assert_eq!(again, first);
        }
        // Saturate the warm server: the load terms (weight 4) outweigh the prefix (3).
        let warm = snapshot.endpoints.iter_mut().find(|e| e.address == first).unwrap();
        warm.metrics.waiting_queue = 50;
        warm.metrics.kv_cache_usage = 1.0;
        let moved = scheduler.pick(&snapshot, &request(&model, &prompt, None)).unwrap().endpoints[0];
        prop_assert_ne!(moved, first);
    }

    #[test]
    fn lora_affinity_picks_the_best_tier(specs in prop::collection::vec(spec(), 1..16)) {
        let mut specs = specs;
        for s in &mut specs { s.ready = true; }
        let snapshot = build(&specs);
        let tier = |e: &Endpoint| {
            let m = &e.metrics;
            let target = adapter(1);
            if m.active_loras.contains(&target) { 3 }
            else if m.max_loras.is_some_and(|max| (m.active_loras.len() + m.waiting_loras.len()) < max as usize) { 2 }
            else if m.waiting_loras.contains(&target) { 1 }
            else { 0 }
        };
        let best = snapshot.endpoints.iter().map(tier).max().unwrap();
        let scheduler = scheduler("max-score-picker", 1, &["lora-affinity-scorer"]);
        let pick = scheduler.pick(&snapshot, &request("lora-1", b"", None)).unwrap();
        let chosen = snapshot.endpoint_at(pick.endpoints[0]).unwrap();
        prop_assert_eq!(tier(chosen), best);
    }
}
