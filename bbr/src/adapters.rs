//! Base-model mappings: which base model a LoRA adapter name belongs to, so that a request for
//! an adapter routes to its base model's pool through `x-gateway-base-model-name`.
//!
//! Sources, in upstream's format (GIE/llm-d `base-model-to-header`): each mapping names one
//! base model and its adapters. In Kubernetes that is a ConfigMap labelled
//! `inference.networking.k8s.io/bbr-managed: "true"` with data keys `baseModel` (the name) and
//! `adapters` (a YAML list of names); standalone, a YAML file holding a list of the same entries:
//!
//! ```yaml
//! - baseModel: meta-llama/Llama-3.1-8B-Instruct
//!   adapters: [food-review-1, food-review-2]
//! ```
//!
//! A base model maps to itself; an unknown name maps to nothing (no header is set). The index is
//! an immutable snapshot: sources build a new one and swap it in (see `crate::server::mappings`).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::error::{Error, Result};

/// One base model and its adapters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    /// The base model's name, as in the request body.
    pub base_model: String,
    /// LoRA adapter names served on top of it.
    #[serde(default)]
    pub adapters: Vec<String>,
}

fn invalid(origin: &str, reason: impl Into<String>) -> Error {
    Error::Mapping {
        origin: origin.to_string(),
        reason: reason.into(),
    }
}

fn check_name(origin: &str, what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid(
            origin,
            format!("{what} is empty; give it a model name"),
        ));
    }
    if name.trim() != name || name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(invalid(
            origin,
            format!("{what} `{name}` has surrounding whitespace or control characters"),
        ));
    }
    Ok(())
}

impl Mapping {
    fn check(&self, origin: &str) -> Result<()> {
        check_name(origin, "baseModel", &self.base_model)?;
        for adapter in &self.adapters {
            check_name(origin, "an adapter name", adapter)?;
        }
        Ok(())
    }
}

/// Parses a standalone mapping file: a YAML list of `{baseModel, adapters}` entries.
pub fn parse_file(text: &str, origin: &str) -> Result<Vec<Mapping>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mappings: Vec<Mapping> = serde_saphyr::from_str(text).map_err(|e| {
        invalid(
            origin,
            format!(
                "{e}; expected a YAML list like `- baseModel: <name>\\n  adapters: [<name>, …]`"
            ),
        )
    })?;
    for mapping in &mappings {
        mapping.check(origin)?;
    }
    Ok(mappings)
}

/// Reads one ConfigMap's `data` in upstream's format (`baseModel`, and `adapters` as a YAML
/// list in a string).
pub fn parse_config_map(data: &BTreeMap<String, String>, origin: &str) -> Result<Mapping> {
    let base_model = data.get("baseModel").ok_or_else(|| {
        invalid(
            origin,
            "data has no `baseModel` key; set it to the base model's name",
        )
    })?;
    let adapters = match data.get("adapters") {
        None => Vec::new(),
        Some(text) if text.trim().is_empty() => Vec::new(),
        Some(text) => serde_saphyr::from_str::<Vec<String>>(text).map_err(|e| {
            invalid(
                origin,
                format!("data.adapters is not a YAML list of names ({e}); write `- <name>` lines"),
            )
        })?,
    };
    let mapping = Mapping {
        base_model: base_model.clone(),
        adapters,
    };
    mapping.check(origin)?;
    Ok(mapping)
}

/// A name that two mappings claim for different base models; the first one (by origin order)
/// is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The contested model or adapter name.
    pub name: String,
    /// The base model kept, and where it came from.
    pub kept: (String, String),
    /// The base model ignored, and where it came from.
    pub ignored: (String, String),
}

/// The lookup table: model or adapter name → base model. Immutable once built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseModelIndex {
    base_of: HashMap<String, String>,
}

impl BaseModelIndex {
    /// Builds the index from mappings in a deterministic order (`(origin, mapping)`, sorted by
    /// the caller or already ordered); returns the conflicts it resolved.
    pub fn build<'a>(
        mappings: impl IntoIterator<Item = (&'a str, &'a Mapping)>,
    ) -> (Self, Vec<Conflict>) {
        let mut base_of: HashMap<String, String> = HashMap::new();
        let mut origin_of: HashMap<String, String> = HashMap::new();
        let mut conflicts = Vec::new();
        for (origin, mapping) in mappings {
            let names = std::iter::once(&mapping.base_model).chain(&mapping.adapters);
            for name in names {
                match base_of.get(name) {
                    Some(existing) if *existing != mapping.base_model => {
                        conflicts.push(Conflict {
                            name: name.clone(),
                            kept: (
                                existing.clone(),
                                origin_of.get(name).cloned().unwrap_or_default(),
                            ),
                            ignored: (mapping.base_model.clone(), origin.to_string()),
                        });
                    }
                    Some(_) => {}
                    None => {
                        base_of.insert(name.clone(), mapping.base_model.clone());
                        origin_of.insert(name.clone(), origin.to_string());
                    }
                }
            }
        }
        (BaseModelIndex { base_of }, conflicts)
    }

    /// The base model of `model` (itself for a base model), if any mapping names it.
    pub fn base_of(&self, model: &str) -> Option<&str> {
        self.base_of.get(model).map(String::as_str)
    }

    /// How many names the index knows.
    pub fn len(&self) -> usize {
        self.base_of.len()
    }

    /// Whether no mapping is loaded.
    pub fn is_empty(&self) -> bool {
        self.base_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_map_in_upstream_format() {
        let m = parse_config_map(
            &data(&[
                ("baseModel", "meta-llama/Llama-3.1-8B-Instruct"),
                ("adapters", "- food-review-1\n- food-review-2\n"),
            ]),
            "ConfigMap default/llama",
        )
        .unwrap();
        assert_eq!(m.base_model, "meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(m.adapters, ["food-review-1", "food-review-2"]);
        let no_adapters = parse_config_map(&data(&[("baseModel", "b")]), "cm").unwrap();
        assert!(no_adapters.adapters.is_empty());
    }

    #[test]
    fn bad_config_maps_say_what_to_fix() {
        let err = parse_config_map(&data(&[("adapters", "- a")]), "ConfigMap ns/x").unwrap_err();
        assert!(err.to_string().contains("ConfigMap ns/x"), "{err}");
        assert!(err.to_string().contains("baseModel"), "{err}");
        let err =
            parse_config_map(&data(&[("baseModel", "b"), ("adapters", "a: 1")]), "cm").unwrap_err();
        assert!(err.to_string().contains("YAML list"), "{err}");
        assert!(parse_config_map(&data(&[("baseModel", " ")]), "cm").is_err());
        assert!(
            parse_config_map(&data(&[("baseModel", "b"), ("adapters", "- \" a\"")]), "cm").is_err()
        );
    }

    #[test]
    fn file_format_and_errors() {
        let text = "- baseModel: base-a\n  adapters: [a1, a2]\n- baseModel: base-b\n";
        let mappings = parse_file(text, "m.yaml").unwrap();
        assert_eq!(mappings.len(), 2);
        assert!(parse_file("", "m.yaml").unwrap().is_empty());
        let err = parse_file("- base: x\n", "m.yaml").unwrap_err();
        assert!(err.to_string().contains("m.yaml"), "{err}");
        assert!(err.to_string().contains("baseModel"), "{err}");
    }

    #[test]
    fn index_maps_adapters_and_bases_and_keeps_the_first_claim() {
        let a = Mapping {
            base_model: "base-a".into(),
            adapters: vec!["lora-1".into(), "shared".into()],
        };
        let b = Mapping {
            base_model: "base-b".into(),
            adapters: vec!["shared".into(), "lora-2".into()],
        };
        let (index, conflicts) = BaseModelIndex::build([("cm/a", &a), ("cm/b", &b)]);
        assert_eq!(index.base_of("lora-1"), Some("base-a"));
        assert_eq!(index.base_of("base-a"), Some("base-a"));
        assert_eq!(index.base_of("lora-2"), Some("base-b"));
        assert_eq!(index.base_of("shared"), Some("base-a"));
        assert_eq!(index.base_of("unknown"), None);
        assert_eq!(index.len(), 5);
        assert_eq!(
            conflicts,
            [Conflict {
                name: "shared".into(),
                kept: ("base-a".into(), "cm/a".into()),
                ignored: ("base-b".into(), "cm/b".into()),
            }]
        );
    }
}
