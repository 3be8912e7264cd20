//! Pick latency, prefix hashing included, for 10/100/1,000 endpoints and
//! 1 KiB/16 KiB/100 KiB prompts; plus hashing and index insert alone.
//!
//! Run: `cargo bench -p switchyard-epp --bench pick`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use divan::{Bencher, black_box};
use switchyard_epp::datastore::EndpointMetrics;
use switchyard_epp::datastore::{Endpoint, PoolSnapshot};
use switchyard_epp::prefix::{PrefixTable, hash_prompt};
use switchyard_epp::scheduling::{RequestView, Scheduler};

fn main() {
    divan::main();
}

const PROMPT_BYTES: [usize; 3] = [1024, 16 * 1024, 100 * 1024];

/// A pool with varied load, where a tenth of the servers (at least one)
/// already hold the benchmark prompt's prefix.
fn pool(n: usize, prompt: &[u8]) -> PoolSnapshot {
    let endpoints: Vec<Endpoint> = (0..n)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8));
            let mut e = Endpoint::new(
                &format!("p{i}-rank-0"),
                &format!("p{i}"),
                SocketAddr::new(ip, 8000),
            );
            e.metrics = EndpointMetrics {
                waiting_queue: (i % 7) as u32,
                running: (i % 13) as u32,
                kv_cache_usage: (i % 10) as f64 / 10.0,
                ..EndpointMetrics::default()
            };
            e
        })
        .collect();
    let snapshot = PoolSnapshot {
        endpoints,
        ..PoolSnapshot::default()
    };
    let mut hashes = Vec::new();
    hash_prompt("model", "", prompt, 64, 256, &mut hashes);
    for e in snapshot.endpoints.iter().step_by(10) {
        for h in &hashes {
            e.prefix.insert(*h);
        }
    }
    snapshot
}

fn prompt(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[divan::bench(consts = [10, 100, 1000], args = PROMPT_BYTES)]
fn pick<const ENDPOINTS: usize>(bencher: Bencher, prompt_bytes: usize) {
    let text = prompt(prompt_bytes);
    let snapshot = pool(ENDPOINTS, &text);
    let scheduler = Scheduler::default();
    let now = Instant::now();
    bencher.bench_local(|| {
        let request = RequestView {
            target_model: "model",
            prompt: black_box(&text),
            cache_salt: "",
            subset: None,
            test_endpoint_selection: None,
            now,
        };
        // The pick (and its reservation) is dropped at once, as a completed request.
        black_box(scheduler.pick(&snapshot, &request).ok());
    });
}

#[divan::bench(args = PROMPT_BYTES)]
fn hash_only(bencher: Bencher, prompt_bytes: usize) {
    let text = prompt(prompt_bytes);
    let mut out = Vec::with_capacity(256);
    bencher.bench_local(|| hash_prompt("model", "", black_box(&text), 64, 256, &mut out));
}

#[divan::bench]
fn insert_256_blocks(bencher: Bencher) {
    let table = PrefixTable::default();
    let mut hashes = Vec::new();
    hash_prompt("model", "", &prompt(16 * 1024), 64, 256, &mut hashes);
    bencher.bench_local(|| {
        for h in &hashes {
            table.insert(black_box(*h));
        }
    });
}
