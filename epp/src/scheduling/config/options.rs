//! What the config loader takes from outside the file (`--allow-experimental-plugins`,
//! `--feature-gates`) and how feature gates are read: `name` or `name=true|false`, as
//! upstream's loader reads them, against the gates upstream registers.

use crate::error::{Error, Result};

/// The feature gates upstream's EPPs register (GIE v1.5 and llm-d-router v0.10).
pub const FEATURE_GATES: [&str; 4] = [
    "flowControl",
    "dataLayer",
    "enableLegacyMetrics",
    "haPopulateNonLeaderDatastore",
];

/// Loader settings from flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--allow-experimental-plugins`: plugins upstream marks Alpha may be configured.
    pub allow_experimental: bool,
    /// `--feature-gates`, applied after the file's `featureGates`.
    pub feature_gates: Vec<String>,
}

impl LoadOptions {
    /// The value `--feature-gates` gives gate `name`, if it names it.
    pub fn gate(&self, name: &str) -> Option<bool> {
        self.feature_gates
            .iter()
            .filter_map(|entry| parse_gate(entry).ok())
            .filter(|(gate, _)| *gate == name)
            .map(|(_, on)| on)
            .next_back()
    }
}

/// Reads one gate entry, `name` or `name=true|false`, checking the name is a known gate.
pub fn parse_gate(entry: &str) -> Result<(&str, bool)> {
    let (name, on) = match entry.split_once('=') {
        None => (entry.trim(), true),
        Some((name, value)) => match value.trim() {
            "true" => (name.trim(), true),
            "false" => (name.trim(), false),
            other => {
                return Err(Error::Config(format!(
                    "feature gate `{entry}`: `{other}` is not true or false"
                )));
            }
        },
    };
    if !FEATURE_GATES.contains(&name) {
        return Err(Error::Config(format!(
            "unknown feature gate `{name}`; known gates: {}",
            FEATURE_GATES.join(", ")
        )));
    }
    Ok((name, on))
}

/// Whether gate `name` ends up on: the file's entries, then the flag's, last one wins.
pub fn gate_enabled(file: &[String], options: &LoadOptions, name: &str) -> bool {
    let from_file = file
        .iter()
        .filter_map(|entry| parse_gate(entry).ok())
        .filter(|(gate, _)| *gate == name)
        .map(|(_, on)| on)
        .next_back();
    options.gate(name).or(from_file).unwrap_or(false)
}
