//! The ConfigMap index, and the watcher against a mocked API server (tower-test).

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::json;

use super::*;
use crate::server::metrics::Metrics;

fn config_map(name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "inference",
            "resourceVersion": "2",
            "labels": { BBR_MANAGED_LABEL: "true" },
        },
        "data": data,
    })
}

fn typed(value: serde_json::Value) -> ConfigMap {
    serde_json::from_value(value).unwrap()
}

#[test]
fn index_applies_deletes_and_drops_invalid_config_maps() {
    let mut index = ConfigMapMappings::default();
    let llama = typed(config_map(
        "llama",
        json!({"baseModel": "llama", "adapters": "- food-review\n"}),
    ));
    index.apply(&llama).unwrap();
    assert_eq!(index.mappings()[0].0, "ConfigMap inference/llama");
    assert_eq!(index.mappings()[0].1.adapters, ["food-review"]);
    // An edit that breaks the ConfigMap removes its old mapping rather than keeping stale data.
    let broken = typed(config_map("llama", json!({"adapters": "- x"})));
    let err = index.apply(&broken).unwrap_err();
    assert!(
        err.to_string().contains("ConfigMap inference/llama"),
        "{err}"
    );
    assert!(index.mappings().is_empty());
    index.apply(&llama).unwrap();
    index.delete(&llama);
    assert!(index.mappings().is_empty());
    index.apply(&llama).unwrap();
    index.reset();
    assert!(index.mappings().is_empty());
}

/// Answers the watcher's list with `llama`, then one watch with an added, a modified and a
/// deleted ConfigMap; later watches stay pending.
async fn api_server(mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>) {
    let mut pending = Vec::new();
    let mut watches = 0;
    while let Some((request, respond)) = handle.next_request().await {
        let uri = request.uri().to_string();
        assert!(
            uri.starts_with("/api/v1/namespaces/inference/configmaps?"),
            "{uri}"
        );
        assert!(
            uri.contains("labelSelector=inference.networking.k8s.io%2Fbbr-managed%3Dtrue"),
            "{uri}"
        );
        if !uri.contains("watch=true") {
            let list = json!({
                "apiVersion": "v1",
                "kind": "ConfigMapList",
                "metadata": { "resourceVersion": "10" },
                "items": [config_map("llama", json!({"baseModel": "llama", "adapters": "- food-review"}))],
            });
            respond.send_response(Response::new(Body::from(list.to_string().into_bytes())));
            continue;
        }
        watches += 1;
        if watches > 1 {
            pending.push(respond);
            continue;
        }
        let events = [
            json!({"type": "ADDED", "object": config_map("mistral", json!({"baseModel": "mistral", "adapters": "- sql-lora"}))}),
            json!({"type": "MODIFIED", "object": config_map("mistral", json!({"baseModel": "mistral", "adapters": "- sql-lora\n- chat-lora"}))}),
            json!({"type": "DELETED", "object": config_map("llama", json!({"baseModel": "llama"}))}),
        ];
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        respond.send_response(Response::new(Body::from(body.into_bytes())));
    }
}

#[tokio::test]
async fn watcher_publishes_list_and_watch_events() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(api_server(handle));
    let client = Client::new(service, "inference");
    let store = Arc::new(MappingStore::new(Arc::new(Metrics::new())));
    let cancel = CancellationToken::new();
    let watch = tokio::spawn(watch_config_maps(
        client,
        Some("inference".into()),
        store.clone(),
        cancel.clone(),
    ));

    let reached = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let index = store.snapshot();
            if index.base_of("chat-lora") == Some("mistral")
                && index.base_of("food-review").is_none()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "the watch events never reached the store");
    let index = store.snapshot();
    assert_eq!(index.base_of("sql-lora"), Some("mistral"));
    assert_eq!(index.base_of("llama"), None);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), watch)
        .await
        .unwrap()
        .unwrap();
    server.abort();
}
