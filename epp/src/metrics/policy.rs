//! Which model names may become metric label values.
//!
//! Model names come from request bodies (and, from trusted callers, the forced-rewrite
//! header), so a client could otherwise mint a series per request and a page of gigabytes.
//! A name becomes a label value only when it is short and plain ([`MAX_LABEL_BYTES`],
//! [`is_label_byte`]) and either the pool knows it ([`crate::trust::pool_knows_model`]:
//! objectives, rewrites, scraped LoRA adapters) or it is one of the first
//! [`MAX_UNKNOWN_MODEL_LABELS`] other names seen (a base model nobody declared, so a plain
//! deployment still gets per-model figures). Everything else is [`OVERFLOW_LABEL`].

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::datastore::Datastore;
use crate::trust::pool_knows_model;

/// The label value for a model the pool does not know, or once the label cap
/// (`labels::MAX_MODEL_LABELS`) is reached.
pub const OVERFLOW_LABEL: &str = "other";

/// Longest model name used as a label value; longer ones are reported as `other`.
pub const MAX_LABEL_BYTES: usize = 128;

/// Distinct model names the pool does not know that still get their own label value; later
/// ones are `other`. Small on purpose: these are names any client can choose.
pub const MAX_UNKNOWN_MODEL_LABELS: usize = 16;

/// The bytes a model label value may hold: printable ASCII without the quote and backslash
/// the exposition format would have to escape.
pub fn is_label_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b'"' && byte != b'\\'
}

/// Decides each model name's label value. Lock-free on the request path: the catalog is an
/// `ArcSwap` load and the unknown names an `ArcSwap` set that only grows to its cap.
#[derive(Default)]
pub struct LabelPolicy {
    /// The pool whose models are known; `None` knows nothing (every name is unknown).
    catalog: Option<Arc<Datastore>>,
    /// Unknown names admitted so far (at most [`MAX_UNKNOWN_MODEL_LABELS`]).
    unknown: ArcSwap<HashSet<Box<str>>>,
}

impl LabelPolicy {
    /// Takes the known models from `datastore`'s current snapshot on each decision.
    pub fn learn_models_from(&mut self, datastore: Arc<Datastore>) {
        self.catalog = Some(datastore);
    }

    /// The label value for `model`: itself, or [`OVERFLOW_LABEL`]. The empty name (a body
    /// without `model`) is kept: it is one fixed value.
    pub fn label<'m>(&self, model: &'m str) -> &'m str {
        if model.is_empty() {
            return model;
        }
        if model.len() > MAX_LABEL_BYTES || !model.bytes().all(is_label_byte) {
            return OVERFLOW_LABEL;
        }
        if self
            .catalog
            .as_ref()
            .is_some_and(|store| pool_knows_model(&store.load(), model))
        {
            return model;
        }
        if self.unknown.load().contains(model) {
            return model;
        }
        let mut admitted = false;
        self.unknown.rcu(|current| {
            admitted = current.contains(model) || current.len() < MAX_UNKNOWN_MODEL_LABELS;
            if admitted && !current.contains(model) {
                let mut next = HashSet::clone(current);
                next.insert(model.into());
                Arc::new(next)
            } else {
                Arc::clone(current)
            }
        });
        if admitted { model } else { OVERFLOW_LABEL }
    }
}
