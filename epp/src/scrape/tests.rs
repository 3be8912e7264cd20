//! The scrapers and the datastore owner against real HTTP servers on loopback:
//! hand-written ones for the pathological cases (a `/metrics` that never
//! answers, one that streams forever) and the simulator's replicas.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use switchyard_sim::faults::Faults;
use switchyard_sim::http::{ReplicaOptions, spawn_replica};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::datastore::{Endpoint, PodView};

/// One accepted connection of a test server.
pub(super) struct Conn {
    stream: TcpStream,
    served: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Conn {
    /// Reads one request head, recording its arrival; false on EOF or error.
    async fn next_request(&mut self) -> bool {
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match self.stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        self.arrivals.lock().unwrap().push(Instant::now());
        true
    }
}

/// A loopback server handing each connection to `serve`. Returns its port
/// and the instants at which requests arrived.
pub(super) async fn server<F, Fut>(serve: F) -> (u16, Arc<Mutex<Vec<Instant>>>)
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let served = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&arrivals);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(Conn {
                stream,
                served: Arc::clone(&served),
                arrivals: Arc::clone(&seen),
            }));
        }
    });
    (port, arrivals)
}

/// A vLLM page whose queue length is the number of pages served so far.
fn vllm_page(waiting: u64) -> String {
    format!(
        "# TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{model_name=\"m\"}} {waiting}\n\
         vllm:num_requests_running{{model_name=\"m\"}} 1\n\
         vllm:kv_cache_usage_perc{{model_name=\"m\"}} 0.25\n"
    )
}

/// Answers every request with a fresh vLLM page.
pub(super) async fn good(mut conn: Conn) {
    while conn.next_request().await {
        let page = vllm_page(conn.served.fetch_add(1, Ordering::Relaxed) + 1);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            page.len()
        );
        let reply = head + &page;
        if conn.stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads requests and never answers.
async fn hung(mut conn: Conn) {
    while conn.next_request().await {}
}

/// Answers with a chunked body that never ends.
async fn endless(mut conn: Conn) {
    if !conn.next_request().await {
        return;
    }
    let chunk = format!("10000\r\n{}\r\n", "#".repeat(0x10000));
    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    if conn.stream.write_all(head).await.is_err() {
        return;
    }
    while conn.stream.write_all(chunk.as_bytes()).await.is_ok() {}
}

/// Answers 500, then a page without the required metrics, alternately.
async fn broken(mut conn: Conn) {
    while conn.next_request().await {
        let reply: &[u8] = if conn
            .served
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(2)
        {
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nunrelated 1\n"
        };
        if conn.stream.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn one_pod(ports: &[u16]) -> PoolState {
    PoolState {
        pool_name: "pool".into(),
        target_ports: ports.to_vec(),
        pods: vec![PodView {
            name: "pod".into(),
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            ready: true,
            deleting: false,
        }],
        ..PoolState::default()
    }
}

fn endpoint<'s>(snapshot: &'s PoolSnapshot, name: &str) -> &'s Endpoint {
    snapshot
        .endpoints
        .iter()
        .find(|e| &*e.name == name)
        .unwrap()
}

/// The datastore, the membership sender, the counters, the stop trigger,
/// the owner task and its synced flag.
type Started = (
    Arc<Datastore>,
    watch::Sender<Arc<PoolState>>,
    Arc<ScrapeMetrics>,
    tokio::sync::oneshot::Sender<()>,
    JoinHandle<()>,
    watch::Receiver<bool>,
);

/// Starts the owner on `state`; returns the datastore, the membership sender,
/// the counters and the stop trigger.
fn start(state: PoolState) -> Started {
    let datastore = Arc::new(Datastore::default());
    let (states_tx, states) = watch::channel(Arc::new(state));
    let metrics = Arc::new(ScrapeMetrics::default());
    let config = ScrapeConfig {
        metrics: Arc::clone(&metrics),
        ..ScrapeConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (synced_tx, synced) = watch::channel(false);
    let on_synced = move || {
        synced_tx.send_replace(true);
    };
    let owner = tokio::spawn(run_datastore_owner(
        Arc::clone(&datastore),
        states,
        config,
        on_synced,
        async move {
            let _ = stopped.await;
        },
    ));
    (datastore, states_tx, metrics, stop, owner, synced)
}

/// The longest pause between consecutive instants.
fn longest_gap(instants: &[Instant]) -> Duration {
    instants
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_or_endless_metrics_page_delays_no_other_endpoint() {
    let (good_port, good_arrivals) = server(good).await;
    let (hung_port, hung_arrivals) = server(hung).await;
    let (endless_port, _) = server(endless).await;
    let (broken_port, _) = server(broken).await;
    let (datastore, states, metrics, stop, owner, mut synced) =
        start(one_pod(&[good_port, hung_port, endless_port, broken_port]));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snapshot = datastore.load();
    let now = std::time::Instant::now();
    let good_endpoint = endpoint(&snapshot, "pod-rank-0");
    let age = good_endpoint
        .metrics_age(now)
        .expect("the good endpoint was scraped");
    assert!(
        age < Duration::from_millis(500),
        "the good endpoint's metrics are {age:?} old"
    );
    assert!(good_endpoint.metrics.waiting_queue > 0);
    assert_eq!(good_endpoint.metrics.kv_cache_usage, 0.25);
    let arrivals = good_arrivals.lock().unwrap().clone();
    // 1.5 s at 50 ms is 30 scrapes; the hung endpoint's 1 s timeout elapsed
    // meanwhile without pausing this one.
    assert!(
        arrivals.len() >= 10,
        "only {} scrapes of the good endpoint",
        arrivals.len()
    );
    let gap = longest_gap(&arrivals);
    assert!(
        gap < Duration::from_millis(500),
        "the good endpoint waited {gap:?} between scrapes"
    );

    for stale in ["pod-rank-1", "pod-rank-2", "pod-rank-3"] {
        let endpoint = endpoint(&snapshot, stale);
        assert!(endpoint.scraped_at.is_none(), "{stale} has metrics");
        assert!(endpoint.is_stale(now, Duration::from_millis(200)));
    }
    assert!(
        metrics.errors("timeout") >= 1,
        "the hung endpoint timed out"
    );
    assert!(metrics.errors("too_large") >= 1, "the endless body was cut");
    assert!(metrics.errors("http_status") >= 1);
    assert!(metrics.errors("metrics") >= 1);
    assert!(metrics.scrapes.get() >= arrivals.len() as u64);

    assert!(!*synced.borrow(), "the channel's initial value is no sync");
    // The bad endpoints leave the pool: their scrapers stop.
    states.send_replace(Arc::new(one_pod(&[good_port])));
    let became_synced = tokio::time::timeout(Duration::from_secs(5), synced.wait_for(|s| *s)).await;
    assert!(
        became_synced.is_ok(),
        "a state from the source marks the datastore synced"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(datastore.load().endpoints.len(), 1);
    let hung_requests = hung_arrivals.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        hung_arrivals.lock().unwrap().len(),
        hung_requests,
        "the hung endpoint is still scraped"
    );
    let still_scraped =
        endpoint(&datastore.load(), "pod-rank-0").metrics_age(std::time::Instant::now());
    assert!(still_scraped.is_some_and(|a| a < Duration::from_millis(500)));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), owner)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_publish_the_dispatch_mark_taken_before_the_request() {
    let (port, _) = server(good).await;
    let (datastore, states, _metrics, stop, owner, _synced) = start(one_pod(&[port]));
    // Without a membership source the owner keeps scraping the last pool.
    drop(states);
    let member = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(endpoint) = datastore.load().endpoints.first() {
                return Arc::clone(&endpoint.load);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let load = member.expect("the owner applied the membership");
    let before = load.reserve(1);
    assert_eq!(load.unseen(), 1);
    // Once a scrape that began after the reservation is published, the
    // reservation counts as seen by the server's queue.
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while load.unseen() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "no scrape absorbed the reservation");
    assert_eq!(load.in_flight(), 1);
    drop(before);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), owner)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_replicas_are_scraped_and_their_faults_contained() {
    let replica = |faults: Faults| async move {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let options = ReplicaOptions {
            faults,
            ..ReplicaOptions::new("sim", "model")
        };
        spawn_replica(listener, options).unwrap()
    };
    let good = replica(Faults::default()).await;
    let hung = replica(Faults {
        metrics_hang: true,
        ..Faults::default()
    })
    .await;
    // Above the 4 MiB cap, yet cheap for the simulator to pad every 50 ms.
    let huge = replica(Faults {
        metrics_huge_bytes: 5 << 20,
        ..Faults::default()
    })
    .await;
    let ports = [good.addr.port(), hung.addr.port(), huge.addr.port()];
    let (datastore, _states, metrics, stop, owner, _synced) = start(one_pod(&ports));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snapshot = datastore.load();
    let now = std::time::Instant::now();
    let good_endpoint = endpoint(&snapshot, "pod-rank-0");
    let age = good_endpoint
        .metrics_age(now)
        .expect("the simulator was scraped");
    assert!(age < Duration::from_millis(500), "metrics are {age:?} old");
    // The simulator's vLLM page carries cache_config_info: the cache figures
    // reached the endpoint.
    assert!(
        good_endpoint
            .metrics
            .cache_num_blocks
            .is_some_and(|b| b > 0),
        "{:?}",
        good_endpoint.metrics
    );
    assert!(endpoint(&snapshot, "pod-rank-1").scraped_at.is_none());
    assert!(endpoint(&snapshot, "pod-rank-2").scraped_at.is_none());
    assert!(metrics.errors("timeout") >= 1);
    assert!(metrics.errors("too_large") >= 1);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), owner)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn counters_register_under_their_documented_names() {
    let metrics = ScrapeMetrics::default();
    metrics.record(&Ok(EndpointMetrics::default()));
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    metrics.record(&Err(crate::Error::Scrape {
        endpoint: "e".into(),
        address: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
        reason: "timeout",
        detail: "slow".into(),
    }));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("switchyard_epp_metrics_scrapes_total 2"),
        "{text}"
    );
    assert!(
        text.contains("switchyard_epp_metrics_scrape_errors_total{reason=\"timeout\"} 1"),
        "{text}"
    );
}

#[test]
fn configs_that_would_never_scrape_are_refused() {
    assert!(ScrapeConfig::default().validate().is_ok());
    let cases = [
        ScrapeConfig {
            interval: Duration::ZERO,
            ..ScrapeConfig::default()
        },
        ScrapeConfig {
            timeout: Duration::ZERO,
            ..ScrapeConfig::default()
        },
        ScrapeConfig {
            max_body_bytes: 0,
            ..ScrapeConfig::default()
        },
        ScrapeConfig {
            path: "metrics".into(),
            ..ScrapeConfig::default()
        },
        ScrapeConfig {
            path: "/met rics".into(),
            ..ScrapeConfig::default()
        },
    ];
    for config in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.kind(), "config", "{err}");
    }
}

/// Like [`good`], but each answer takes 300 ms.
async fn slow(mut conn: Conn) {
    while conn.next_request().await {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let page = vllm_page(1);
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{page}",
            page.len()
        );
        if conn.stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_metrics_are_stamped_when_the_answer_arrives_not_when_asked() {
    let (port, arrivals) = server(slow).await;
    let (datastore, _states, _metrics, stop, owner, _synced) = start(one_pod(&[port]));
    let scraped_at = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(at) = datastore
                .load()
                .endpoints
                .first()
                .and_then(|e| e.scraped_at)
            {
                return at;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a scrape was published");
    let asked = arrivals.lock().unwrap()[0];
    assert!(
        scraped_at >= asked + Duration::from_millis(300),
        "stamped {:?} after the request; the answer took 300 ms",
        scraped_at.saturating_duration_since(asked)
    );
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), owner).await;
}
