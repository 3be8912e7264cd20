//! Decoding a config's `parameters` maps (plugins, flow-control policies) with errors that
//! name the offending field.

use serde::de::DeserializeOwned;

/// Decodes `parameters` into `T` (absent means all defaults). serde's type errors do not
/// say which field was wrong, so on failure each field is decoded alone to find the one
/// to name: the error then reads "field `x`: invalid type …".
pub fn decode<T: DeserializeOwned + Default>(
    value: serde_json::Value,
) -> std::result::Result<T, String> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value::<T>(value.clone()).map_err(|err| {
        let serde_json::Value::Object(map) = &value else {
            return format!("parameters must be a map: {err}");
        };
        map.iter()
            .find_map(|(key, field)| {
                let alone = serde_json::Value::Object(
                    std::iter::once((key.clone(), field.clone())).collect(),
                );
                serde_json::from_value::<T>(alone)
                    .err()
                    .map(|e| format!("field `{key}`: {e}"))
            })
            .unwrap_or_else(|| err.to_string())
    })
}
