//! M11: creating or retargeting a rollout needs `patch` on what it targets.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchyard_check::Objects;
use switchyard_check::admission::Config;
use tower::ServiceExt;

use super::{AccessReviewer, Answer, Question, ReviewUser, question};
use crate::webhook::server::{VALIDATE_PATH, WebhookState, router};

fn rollout(route: &str) -> Value {
    json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1", "kind": "InferenceRollout",
        "metadata": {"name": "ro", "namespace": "team-a"},
        "spec": {"target": {"mode": "PoolSplit", "route": {"name": route, "ruleName": "chat"},
                            "stable": {"name": "v1"}, "canary": {"name": "v2"}},
                 "strategy": {"steps": [{"weight": 500}]}}
    })
}

fn user() -> ReviewUser {
    ReviewUser {
        username: "mallory".into(),
        uid: Some("u-7".into()),
        groups: vec!["team-a".into()],
        extra: [("scopes".to_owned(), vec!["x".to_owned()])].into(),
    }
}

#[test]
fn m11_a_new_or_retargeted_rollout_asks_about_its_route_and_an_unchanged_one_does_not() {
    let asked = question(&rollout("other-team"), None, "team-a", &user()).unwrap();
    assert_eq!(
        (
            asked.group,
            asked.resource,
            asked.name.as_str(),
            asked.namespace.as_str()
        ),
        (
            "gateway.networking.k8s.io",
            "httproutes",
            "other-team",
            "team-a"
        )
    );
    assert_eq!(asked.user, user());
    assert!(question(&rollout("r"), Some(&rollout("r")), "team-a", &user()).is_none());
    assert!(question(&rollout("r2"), Some(&rollout("r")), "team-a", &user()).is_some());
    let model_split = json!({"spec": {"target": {"mode": "ModelSplit",
        "modelSplit": {"rewriteRef": "rw", "model": "m", "stable": "a", "canary": "b"}},
        "strategy": {"steps": [{"weight": 500}]}}});
    let asked = question(&model_split, None, "team-a", &user()).unwrap();
    assert_eq!(asked.resource, "inferencemodelrewrites");
    assert_eq!(asked.name, "rw");
}

/// Answers every question with `allowed` and remembers what it was asked.
struct Fixed {
    allowed: bool,
    asked: Mutex<Vec<Question>>,
}

impl AccessReviewer for Fixed {
    fn may_patch<'a>(&'a self, question: &'a Question) -> Answer<'a> {
        self.asked.lock().unwrap().push(question.clone());
        let allowed = self.allowed;
        Box::pin(async move { Ok(allowed) })
    }
}

async fn review_with(allowed: bool) -> (Value, Vec<Question>) {
    let reviewer = Arc::new(Fixed {
        allowed,
        asked: Mutex::new(Vec::new()),
    });
    let state = WebhookState {
        view: Arc::new(Objects::default()),
        config: Arc::new(Config::default()),
        access: Some(reviewer.clone()),
    };
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": "CREATE", "namespace": "team-a",
                    "userInfo": {"username": "mallory", "uid": "u-7", "groups": ["team-a"],
                                 "extra": {"scopes": ["x"]}},
                    "object": rollout("other-team")}
    });
    let response = router(state)
        .oneshot(
            Request::post(VALIDATE_PATH)
                .header("content-type", "application/json")
                .body(Body::from(review.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let asked = reviewer.asked.lock().unwrap().clone();
    (serde_json::from_slice(&bytes).unwrap(), asked)
}

#[tokio::test]
async fn m11_a_user_who_may_not_patch_the_route_cannot_create_a_rollout_on_it() {
    let (answer, asked) = review_with(false).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("may not patch HTTPRoute team-a/other-team"),
        "{message}"
    );
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].user, user());

    let (answer, _) = review_with(true).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
}
