//! H4 and M15: concurrent admin actions and late retries against the mocked apiserver.

use http::{Method, StatusCode};
use serde_json::json;

use super::{R, bearer, call, intent_patch, progressing, start, stored, token_file};
use crate::controller::tests::fixtures::{Expect, serve};

const ROLLOUT_PATH: &str = super::ROLLOUT_PATH;

#[tokio::test]
async fn h4_concurrent_admin_actions_cannot_both_be_recorded() {
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
        "message": "Operation cannot be fulfilled on inferencerollouts.rollout.switchyard.dev \"qwen\": the object has been modified"});
    let (admin, handle) = start(token_file()).await;
    // Both admins read resourceVersion 77; the abort lands first, so the
    // apiserver refuses the promote's write, which carries 77 as well.
    let server = serve(
        handle,
        vec![
            Expect::get(ROLLOUT_PATH, stored(progressing())),
            intent_patch(|body| {
                assert_eq!(body["metadata"]["resourceVersion"], "77");
                assert_eq!(body["status"]["intent"]["action"], "abort");
            })
            .answering(200, stored(progressing())),
            Expect::get(ROLLOUT_PATH, stored(progressing())),
            intent_patch(|body| assert_eq!(body["metadata"]["resourceVersion"], "77"))
                .answering(409, conflict),
        ],
    );
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/abort"),
        &[bearer(), ("idempotency-key", "abort-1")],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/promote"),
        &[bearer(), ("idempotency-key", "promote-1")],
        r#"{"mode":"full"}"#,
    )
    .await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("read it again and retry"), "{message}");
}

#[tokio::test]
async fn h4_a_late_retry_of_an_older_nonce_does_not_run_again() {
    // `abort-1` was recorded and acted on; a newer `retry` replaced it.
    let mut status = progressing();
    status["intent"] =
        json!({"action": "retry", "nonce": "retry-1", "by": "bob", "at": "2027-01-15T07:59:00Z"});
    status["observedIntentNonce"] = json!("retry-1");
    status["recentIntentNonces"] = json!(["abort-1", "old"]);
    let (admin, handle) = start(token_file()).await;
    let server = serve(handle, vec![Expect::get(ROLLOUT_PATH, stored(status))]);
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/abort"),
        &[bearer(), ("idempotency-key", "abort-1")],
        "",
    )
    .await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["recorded"], false);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("nothing was done"),
        "{body}"
    );
}

#[tokio::test]
async fn h4_a_new_intent_moves_the_acted_on_nonce_into_the_history() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(
        handle,
        vec![
            Expect::get(ROLLOUT_PATH, stored(progressing())),
            intent_patch(|body| {
                assert_eq!(body["status"]["recentIntentNonces"], json!(["old"]));
                assert_eq!(body["status"]["intent"]["nonce"], "p-1");
            })
            .answering(200, stored(progressing())),
        ],
    );
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/pause"),
        &[bearer(), ("idempotency-key", "p-1")],
        "",
    )
    .await;
    server.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn l9_an_oversized_reason_or_body_is_refused_before_any_write() {
    let (admin, handle) = start(token_file()).await;
    let server = serve(handle, vec![]);
    let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(1025));
    let (status, _, body) = call(
        &admin,
        Method::POST,
        &format!("{R}/abort"),
        &[bearer()],
        &long,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keep it to 1024"),
        "{body}"
    );
    let huge = format!(r#"{{"reason": "{}"}}"#, "x".repeat(100 * 1024));
    let (status, _, _) = call(
        &admin,
        Method::POST,
        &format!("{R}/pause"),
        &[bearer()],
        &huge,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    server.await.unwrap();
}
