//! The costs on the scraping path: reading one vLLM `/metrics` page into
//! `EndpointMetrics` (done in each endpoint's scraper task), and publishing a
//! batch of results into a snapshot of 100 or 1,000 endpoints (done by the
//! datastore owner, which is why it coalesces results for 5 ms).
//!
//! Run: `cargo bench -p switchyard-epp --bench scrape`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use divan::{Bencher, black_box};
use switchyard_epp::datastore::EndpointMetrics;
use switchyard_epp::datastore::{PodView, PoolSnapshot, Scrape};
use switchyard_epp::scrape::engine::EngineConfig;
use switchyard_epp::source::PoolState;
use switchyard_runtime::promtext::Exposition;

fn main() {
    divan::main();
}

/// A vLLM-like page: the gauges the EPP reads plus 200 histogram lines of
/// the kind a real server also exposes (about 20 KiB).
fn vllm_page() -> String {
    let mut page = String::from(
        "# HELP vllm:num_requests_waiting Number of requests waiting.\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 3.0\n\
         vllm:num_requests_running{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 7.0\n\
         vllm:kv_cache_usage_perc{model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.42\n\
         vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"a,b\",waiting_lora_adapters=\"\"} 1.7e9\n\
         vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"8192\"} 1.0\n",
    );
    for le in 0..200 {
        page.push_str(&format!(
            "vllm:time_to_first_token_seconds_bucket{{le=\"{le}.0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"}} {}\n",
            le * 3
        ));
    }
    page
}

#[divan::bench]
fn parse_and_extract_vllm_page(bencher: Bencher) {
    let page = vllm_page();
    let engine = EngineConfig::vllm();
    bencher
        .counter(divan::counter::BytesCount::new(page.len()))
        .bench(|| engine.extract(&Exposition::parse(black_box(&page))));
}

fn snapshot(endpoints: usize) -> PoolSnapshot {
    let pods: Vec<PodView> = (0..endpoints)
        .map(|i| PodView {
            name: format!("pod-{i:05}"),
            ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8))),
            labels: BTreeMap::from([("app".to_owned(), "llama".to_owned())]),
            annotations: BTreeMap::new(),
            ready: true,
            deleting: false,
        })
        .collect();
    let state = PoolState {
        pool_name: "pool".into(),
        target_ports: vec![8000],
        pods,
        ..PoolState::default()
    };
    PoolSnapshot::default().apply(&state).0
}

/// One publish of `batch` results into a pool of `endpoints`.
#[divan::bench(args = [(100, 1), (100, 100), (1000, 1), (1000, 100), (1000, 1000)])]
fn publish_batch(bencher: Bencher, (endpoints, batch): (usize, usize)) {
    let current = snapshot(endpoints);
    let names: Vec<String> = current
        .endpoints
        .iter()
        .take(batch)
        .map(|e| e.name.to_string())
        .collect();
    let now = Instant::now();
    bencher.bench(|| {
        let scrapes = names.iter().map(|name| Scrape {
            endpoint: name,
            metrics: EndpointMetrics {
                waiting_queue: 1,
                ..EndpointMetrics::default()
            },
            scraped_at: now,
            dispatch_mark: 0,
        });
        black_box(current.with_metrics(scrapes))
    });
}
