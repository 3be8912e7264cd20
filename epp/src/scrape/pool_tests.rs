//! The whole data path in one test: the Kubernetes source (against kube's
//! mock API server) feeds [`run_pool`], whose scraper reads a real loopback
//! server.

use std::net::{Ipv4Addr, SocketAddr};

use http::{Request, Response, StatusCode};
use kube::client::Body;

use super::tests::{good, server};
use super::*;
use crate::source::k8s::KubernetesSource;
use crate::source::k8s::tests::{pod_json, pool_json};

/// The whole data path: the Kubernetes source (against kube's mock API
/// server) feeds the owner, whose scraper reads a real loopback server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_pool_takes_a_kubernetes_pool_to_scraped_endpoints() {
    let (port, _) = server(good).await;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let uri = request.uri().to_string();
            let list = |items: Vec<serde_json::Value>| {
                let body =
                    serde_json::json!({"metadata": {"resourceVersion": "1"}, "items": items});
                Response::new(Body::from(body.to_string().into_bytes()))
            };
            if uri.contains("watch=true") {
                held.push(respond);
            } else if uri.starts_with("/apis/inference.networking.k8s.io/v1/") {
                respond.send_response(list(vec![pool_json("llama", i64::from(port), "llama")]));
            } else if uri.starts_with("/api/v1/namespaces/inference/pods?") {
                respond.send_response(list(vec![pod_json("llama-0", "127.0.0.1", "llama", true)]));
            } else {
                let mut missing = Response::new(Body::from(b"404 page not found".to_vec()));
                *missing.status_mut() = StatusCode::NOT_FOUND;
                respond.send_response(missing);
            }
        }
    });
    let source = KubernetesSource::new(
        kube::Client::new(service, "inference"),
        "inference",
        "llama",
    );
    let datastore = Arc::new(Datastore::default());
    let (synced_tx, mut synced) = watch::channel(false);
    let cancel = CancellationToken::new();
    let pool = tokio::spawn(run_pool(
        source,
        Arc::clone(&datastore),
        ScrapeConfig::default(),
        move || {
            synced_tx.send_replace(true);
        },
        cancel.clone(),
    ));

    let scraped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let snapshot = datastore.load();
            if let Some(endpoint) = snapshot.endpoints.first()
                && endpoint.scraped_at.is_some()
            {
                return Arc::clone(&snapshot);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let snapshot = scraped.expect("the pool's endpoint was scraped");
    assert_eq!(&*snapshot.pool_name, "llama");
    assert_eq!(&*snapshot.endpoints[0].name, "llama-0-rank-0");
    assert_eq!(
        snapshot.endpoints[0].address,
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    );
    assert!(snapshot.endpoints[0].metrics.waiting_queue > 0);
    assert!(*synced.borrow_and_update());

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), pool)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
