//! The `/metrics` router over a real registry, called as a tower service.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use prometheus_client::metrics::counter::Counter;
use tower::ServiceExt;

use super::*;

async fn get(router: Router, path: &str) -> (StatusCode, Option<String>, String) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_registry_is_served_as_openmetrics() {
    let mut registry = Registry::default();
    let requests = Counter::<u64>::default();
    registry.register("demo_requests", "Requests seen", requests.clone());
    requests.inc_by(3);
    let (status, content_type, body) = get(router(Arc::new(registry)), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
    assert!(body.contains("demo_requests_total 3"), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
}

/// An exposition refreshed on each scrape, as the EPP's pool gauges are.
struct Scrapes(std::sync::atomic::AtomicU64);

impl Exposition for Scrapes {
    fn encode(&self) -> Result<String, std::fmt::Error> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Ok(format!("scrapes {n}\n"))
    }
}

#[tokio::test]
async fn each_scrape_encodes_afresh() {
    let source = Arc::new(Scrapes(std::sync::atomic::AtomicU64::new(0)));
    let app = router(Arc::clone(&source));
    assert_eq!(get(app.clone(), "/metrics").await.2, "scrapes 1\n");
    assert_eq!(get(app, "/metrics").await.2, "scrapes 2\n");
}

#[tokio::test]
async fn an_encoding_failure_is_a_500() {
    let response = response(Err(std::fmt::Error));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let (status, _, _) = get(router(Arc::new(Registry::default())), "/other").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
