//! Whether an admin action may be recorded, decided from the rollout's status
//! alone (pure: the handler does the reads and the write), and the status
//! fields written with a new intent.
//!
//! The decision alone cannot stop two admins who read the same status at the
//! same moment: both would pass it. The handler therefore always sends the
//! resourceVersion it read as the write's precondition, so the apiserver lets
//! exactly one of them through and the other gets 409.

use switchyard_api::rollout::{InferenceRolloutStatus, Intent, IntentAction};

use super::AdminError;

/// What to do with an incoming action.
#[derive(Debug, PartialEq)]
pub(super) enum Admission<'a> {
    /// The pending intent carries the same `Idempotency-Key`: a repeat of it.
    Repeat(&'a Intent),
    /// An earlier intent carried this key and a newer one has replaced it
    /// since: the action was handled; running it again would undo later ones.
    AlreadyHandled,
    /// Record a new intent.
    Record,
}

/// Decides from `status` whether an action with `key` may be recorded now.
///
/// Refuses (409) a key reused for another action, and any new action while
/// the controller has not yet acted on the pending one (it would be lost).
pub(super) fn admit<'a>(
    status: &'a InferenceRolloutStatus,
    key: Option<&str>,
    action: IntentAction,
) -> Result<Admission<'a>, AdminError> {
    if let Some(pending) = &status.intent
        && key == Some(pending.nonce.as_str())
    {
        if pending.action != action {
            return Err(AdminError::Conflict(format!(
                "Idempotency-Key {:?} was already used for {:?}",
                pending.nonce, pending.action
            )));
        }
        return Ok(Admission::Repeat(pending));
    }
    if let Some(key) = key
        && status.recent_intent_nonces.iter().any(|n| n == key)
    {
        return Ok(Admission::AlreadyHandled);
    }
    if let Some(pending) = &status.intent
        && status.observed_intent_nonce.as_deref() != Some(pending.nonce.as_str())
    {
        return Err(AdminError::Conflict(format!(
            "another admin action is still pending: {:?} by {} (nonce {}); retry once the controller has acted on it",
            pending.action, pending.by, pending.nonce
        )));
    }
    Ok(Admission::Record)
}

/// Puts `intent` in place of the pending one ([`InferenceRolloutStatus::record_intent`]).
pub fn with_intent(status: &mut InferenceRolloutStatus, intent: Intent) {
    status.record_intent(intent);
}

#[cfg(test)]
mod tests;
