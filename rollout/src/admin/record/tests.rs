//! The pure admission decision and the bounded nonce history.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::rollout::{InferenceRolloutStatus, Intent, IntentAction, RECENT_INTENT_NONCES};

use super::{Admission, admit, with_intent};

fn intent(action: IntentAction, nonce: &str) -> Intent {
    Intent {
        action,
        nonce: nonce.into(),
        by: "alice".into(),
        at: Time(Timestamp::UNIX_EPOCH),
        mode: None,
        canary_weight: None,
        reason: String::new(),
    }
}

/// A status whose last intent (`nonce`) the controller has acted on.
fn acted_on(nonce: &str) -> InferenceRolloutStatus {
    InferenceRolloutStatus {
        intent: Some(intent(IntentAction::Pause, nonce)),
        observed_intent_nonce: Some(nonce.into()),
        ..InferenceRolloutStatus::default()
    }
}

#[test]
fn h4_a_late_retry_of_a_replaced_action_is_already_handled_not_run_again() {
    let mut status = acted_on("k-1");
    with_intent(&mut status, intent(IntentAction::Abort, "k-2"));
    status.observed_intent_nonce = Some("k-2".into());
    assert_eq!(status.recent_intent_nonces, vec!["k-1".to_owned()]);
    // The pause with key k-1 arrives again (a client retry after a timeout):
    // recording it would undo the abort.
    assert_eq!(
        admit(&status, Some("k-1"), IntentAction::Pause).unwrap(),
        Admission::AlreadyHandled
    );
    // The current one is a repeat; a fresh key is recorded.
    assert!(matches!(
        admit(&status, Some("k-2"), IntentAction::Abort).unwrap(),
        Admission::Repeat(_)
    ));
    assert_eq!(
        admit(&status, Some("k-3"), IntentAction::Retry).unwrap(),
        Admission::Record
    );
}

#[test]
fn h4_a_pending_action_blocks_others_and_a_reused_key_is_refused() {
    let mut status = acted_on("k-1");
    status.observed_intent_nonce = None;
    let err = admit(&status, Some("k-9"), IntentAction::Abort).unwrap_err();
    assert!(err.to_string().contains("still pending"), "{err}");
    let err = admit(&status, Some("k-1"), IntentAction::Abort).unwrap_err();
    assert!(err.to_string().contains("already used for Pause"), "{err}");
    assert_eq!(
        admit(
            &InferenceRolloutStatus::default(),
            None,
            IntentAction::Pause
        )
        .unwrap(),
        Admission::Record
    );
}

#[test]
fn h4_the_nonce_history_is_bounded_newest_first() {
    let mut status = InferenceRolloutStatus::default();
    for i in 0..40 {
        with_intent(&mut status, intent(IntentAction::Pause, &format!("k-{i}")));
    }
    assert_eq!(status.recent_intent_nonces.len(), RECENT_INTENT_NONCES);
    assert_eq!(status.recent_intent_nonces[0], "k-38");
    assert_eq!(status.intent.unwrap().nonce, "k-39");
}
