//! The parts of an `EndpointPickerConfig` outside the scheduling profile that the loader
//! checks and applies: `dataLayer` (the metrics source and extractor, whose parameters set
//! the scrape path and the engine metric names) and the parser references
//! (`requestHandler.parsers`, and the older top-level `parser`).

use std::collections::HashMap;
use std::sync::Arc;

use super::raw::{RawConfig, RawPlugin};
use crate::error::{Error, Result};
use crate::scheduling::plugins::{self, Role, implied};
use crate::scrape::ScrapeConfig;
use crate::scrape::engine::{DEFAULT_ENGINE, EngineRegistry};

const SOURCE: &str = "metrics-data-source";
const EXTRACTOR: &str = "core-metrics-extractor";
const PARSERS: [&str; 2] = ["openai-parser", "anthropic-parser"];

/// The type a reference resolves to: the declared plugin's, or the reference itself when
/// it names a built-in type upstream injects without a declaration.
fn referenced_type<'a>(reference: &'a str, by_name: &HashMap<&str, &'a RawPlugin>) -> &'a str {
    by_name
        .get(reference)
        .map_or(reference, |p| p.type_.as_str())
}

fn expect(field: &str, reference: &str, found: &str, wanted: &str) -> Result<()> {
    if found == wanted {
        return Ok(());
    }
    let hint = match plugins::role(found) {
        Some(Role::Unsupported(instead)) => format!("; {instead}"),
        _ => String::new(),
    };
    Err(Error::Config(format!(
        "{field}: `{reference}` is a `{found}`, not a `{wanted}`{hint}"
    )))
}

/// Checks the data-layer and parser references.
pub(super) fn check(raw: &RawConfig, by_name: &HashMap<&str, &RawPlugin>) -> Result<()> {
    if let Some(layer) = &raw.data_layer {
        if layer.discovery.is_some() {
            return Err(Error::Config(
                "dataLayer.discovery: endpoint discovery plugins are not supported; run \
                 standalone with --endpoints-file instead"
                    .into(),
            ));
        }
        if layer.peer_discovery.is_some()
            || layer.cross_replica_syncer_plugin_ref.is_some()
            || layer.cross_replica_sync_interval.is_some()
        {
            return Err(Error::Config(
                "dataLayer.peerDiscovery/crossReplicaSync*: replicas do not share state; run \
                 one active replica with --ha-enable-leader-election"
                    .into(),
            ));
        }
        let _ = layer.inject_defaults;
        for (i, source) in layer.sources.iter().enumerate() {
            let field = format!("dataLayer.sources[{i}]");
            let found = referenced_type(&source.plugin_ref, by_name);
            expect(&field, &source.plugin_ref, found, SOURCE)?;
            for (j, extractor) in source.extractors.iter().enumerate() {
                let found = referenced_type(&extractor.plugin_ref, by_name);
                expect(
                    &format!("{field}.extractors[{j}]"),
                    &extractor.plugin_ref,
                    found,
                    EXTRACTOR,
                )?;
            }
        }
    }
    let handler = raw.request_handler.iter().flat_map(|h| h.parsers.iter());
    for (i, parser) in raw.parser.iter().chain(handler).enumerate() {
        let found = referenced_type(&parser.plugin_ref, by_name);
        if !PARSERS.contains(&found) {
            expect(
                &format!("parser #{}", i + 1),
                &parser.plugin_ref,
                found,
                &PARSERS.join("` or `"),
            )?;
        }
    }
    Ok(())
}

/// Applies the metrics source's path and the extractor's engine configs to `scrape`.
pub(super) fn apply(raw: &RawConfig, scrape: &mut ScrapeConfig) -> Result<()> {
    if let Some(source) = raw.plugins.iter().find(|p| p.type_ == SOURCE) {
        let p = implied::metrics_source_parameters(source.name(), SOURCE, source.params())?;
        scrape.path = p.path;
    }
    if let Some(extractor) = raw.plugins.iter().find(|p| p.type_ == EXTRACTOR) {
        let p =
            implied::metrics_extractor_parameters(extractor.name(), EXTRACTOR, extractor.params())?;
        let default = p.default_engine.as_deref().unwrap_or(DEFAULT_ENGINE);
        scrape.engines = Arc::new(EngineRegistry::new(p.engines, default)?);
    }
    Ok(())
}
