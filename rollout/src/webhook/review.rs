//! `admission.k8s.io/v1` AdmissionReview in and out, around the pure verdict
//! of [`switchyard_check::admission::admit`].
//!
//! Only the fields the verdict needs are decoded; the object and old object stay
//! JSON, since the checker's rules read raw documents (that is how they explain
//! a wrongly typed field instead of failing to decode it).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_check::Objects;
use switchyard_check::admission::{Config, Operation, Request, admit};

use super::deputy::{Question, ReviewUser, question};

/// The apiVersion of the reviews we read and write.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
/// The kind of the reviews we read and write.
pub const ADMISSION_KIND: &str = "AdmissionReview";

/// An incoming review: only `request` matters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingReview {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<AdmissionRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest {
    uid: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    user_info: ReviewUser,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
}

/// The review sent back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutgoingReview {
    api_version: &'static str,
    kind: &'static str,
    response: AdmissionResponse,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionResponse {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<ResponseStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// The `metav1.Status` of a denial: `kubectl` prints its message after
/// `admission webhook "…" denied the request:`.
#[derive(Debug, Serialize)]
struct ResponseStatus {
    code: u16,
    reason: &'static str,
    message: String,
}

/// Why a body is not a review we can answer (the handler answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("the body is not an {ADMISSION_API_VERSION} {ADMISSION_KIND}: {0}")]
    Malformed(String),
    /// A review of another version or kind.
    #[error(
        "expected apiVersion {ADMISSION_API_VERSION} and kind {ADMISSION_KIND}, got {0}; set admissionReviewVersions: [v1] in the ValidatingWebhookConfiguration"
    )]
    WrongType(String),
    /// A review without `request`.
    #[error("the {ADMISSION_KIND} has no request")]
    NoRequest,
    /// An operation Kubernetes does not have.
    #[error("unknown operation {0:?}; expected CREATE, UPDATE, DELETE or CONNECT")]
    UnknownOperation(String),
}

/// A decoded review, before it is answered.
#[derive(Debug)]
pub struct Incoming {
    request: AdmissionRequest,
    operation: Operation,
}

/// Decodes one AdmissionReview body.
pub fn read(body: &[u8]) -> Result<Incoming, ReviewError> {
    let review: IncomingReview =
        serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    let (api_version, kind) = (
        review.api_version.as_deref().unwrap_or("<none>"),
        review.kind.as_deref().unwrap_or("<none>"),
    );
    if api_version != ADMISSION_API_VERSION || kind != ADMISSION_KIND {
        return Err(ReviewError::WrongType(format!("{api_version} {kind}")));
    }
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    let operation = Operation::parse(&request.operation)
        .ok_or_else(|| ReviewError::UnknownOperation(request.operation.clone()))?;
    Ok(Incoming { request, operation })
}

impl Incoming {
    /// The access question an InferenceRollout create or retarget raises
    /// ([`super::deputy`]); `None` for anything else.
    pub fn deputy_question(&self) -> Option<Question> {
        if !matches!(self.operation, Operation::Create | Operation::Update) {
            return None;
        }
        let object = self.request.object.as_ref().filter(|o| !o.is_null())?;
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let group = text("apiVersion")?.split('/').next()?;
        if group != switchyard_api::rollout::ROLLOUT_GROUP || text("kind")? != "InferenceRollout" {
            return None;
        }
        let namespace = self
            .request
            .namespace
            .as_deref()
            .or_else(|| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
            })
            .unwrap_or("default");
        question(
            object,
            self.request.old_object.as_ref().filter(|o| !o.is_null()),
            namespace,
            &self.request.user_info,
        )
    }
}

/// Answers one AdmissionReview body: the response review as JSON bytes.
pub fn answer(body: &[u8], objects: &Objects, config: &Config) -> Result<Vec<u8>, ReviewError> {
    respond(read(body)?, objects, config, None)
}

/// Answers a decoded review; `refusal` (the deputy check's) denies it
/// whatever the rules say.
pub fn respond(
    incoming: Incoming,
    objects: &Objects,
    config: &Config,
    refusal: Option<String>,
) -> Result<Vec<u8>, ReviewError> {
    let Incoming { request, operation } = incoming;
    let mut verdict = admit(
        &Request {
            object: request.object.as_ref().filter(|o| !o.is_null()),
            old_object: request.old_object.as_ref().filter(|o| !o.is_null()),
            operation,
            namespace: request.namespace.as_deref(),
            username: &request.user_info.username,
        },
        objects,
        config,
    );
    if let Some(refusal) = refusal {
        verdict.allowed = false;
        verdict.message = Some(match verdict.message {
            Some(rules) => format!("{refusal}; {rules}"),
            None => refusal,
        });
    }
    let status = verdict.message.map(|message| ResponseStatus {
        code: 403,
        reason: "Forbidden",
        message,
    });
    let response = OutgoingReview {
        api_version: ADMISSION_API_VERSION,
        kind: ADMISSION_KIND,
        response: AdmissionResponse {
            uid: request.uid,
            allowed: verdict.allowed,
            status,
            warnings: verdict.warnings,
        },
    };
    serde_json::to_vec(&response).map_err(|e| ReviewError::Malformed(e.to_string()))
}
