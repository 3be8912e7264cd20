//! The `EndpointPickerConfig` document as written (upstream `apix/config/v1alpha1`), decoded
//! strictly: an unknown key anywhere fails with its name.

use serde::Deserialize;

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub feature_gates: Vec<String>,
    #[serde(default)]
    pub plugins: Vec<RawPlugin>,
    /// `None` when the key is absent: upstream then builds a `default` profile from every
    /// declared plugin.
    #[serde(default)]
    pub scheduling_profiles: Option<Vec<RawProfile>>,
    /// GIE's location of the saturation detector (deprecated upstream); read by flow control.
    #[serde(default)]
    pub saturation_detector: Option<serde_json::Value>,
    #[serde(default)]
    pub data_layer: Option<RawDataLayer>,
    /// Read by flow control, which decodes it strictly.
    #[serde(default)]
    pub flow_control: Option<serde_json::Value>,
    /// The older location of the request parser (deprecated upstream).
    #[serde(default)]
    pub parser: Option<RawPluginRef>,
    #[serde(default)]
    pub request_handler: Option<RawRequestHandler>,
}

/// One entry of `plugins`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlugin {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
}

impl RawPlugin {
    /// The plugin's name: `name`, defaulting to its type as upstream.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.type_)
    }

    /// The parameters, `Null` when absent.
    pub fn params(&self) -> serde_json::Value {
        self.parameters.clone().unwrap_or(serde_json::Value::Null)
    }
}

/// One entry of `schedulingProfiles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub name: String,
    #[serde(default)]
    pub plugins: Vec<RawProfilePlugin>,
}

/// A plugin reference in a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawProfilePlugin {
    pub plugin_ref: String,
    pub weight: Option<f64>,
}

/// `{pluginRef: name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawPluginRef {
    pub plugin_ref: String,
}

/// `requestHandler` (llm-d-router's newer home of the parsers).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRequestHandler {
    #[serde(default)]
    pub parsers: Vec<RawPluginRef>,
}

/// `dataLayer`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawDataLayer {
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// Upstream adds the default metrics source and extractor when set (or when
    /// `sources` is empty); Switchyard always scrapes with them.
    pub inject_defaults: Option<bool>,
    pub discovery: Option<serde_json::Value>,
    pub peer_discovery: Option<serde_json::Value>,
    pub cross_replica_syncer_plugin_ref: Option<String>,
    pub cross_replica_sync_interval: Option<String>,
}

/// One `dataLayer.sources` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSource {
    pub plugin_ref: String,
    #[serde(default)]
    pub extractors: Vec<RawPluginRef>,
}
