//! Resolving `flowControl.usageLimitPolicyPluginRef`: a listed (or built-in)
//! `static-usage-limit-policy` or `priority-holdback-policy`, with llm-d's
//! parameter names and validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{RawPlugin, invalid};
use crate::error::Result;
use crate::flow::usage::{DEFAULT_THRESHOLD, UsageLimitPolicy};

const FIELD: &str = "flowControl.usageLimitPolicyPluginRef";
const STATIC: &str = "static-usage-limit-policy";
const HOLDBACK: &str = "priority-holdback-policy";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StaticParameters {
    threshold: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HoldbackParameters {
    shape: Option<String>,
    domain: Option<String>,
    /// The older spelling of `domain` (`stepwise-spread` = rank,
    /// `linear-proportional` = value), still in upstream's README.
    strategy: Option<String>,
    min_ceiling: Option<f64>,
    max_ceiling: Option<f64>,
    ceilings: Option<BTreeMap<String, f64>>,
}

pub(super) fn usage_limit(
    reference: Option<&str>,
    plugins: &BTreeMap<String, &RawPlugin>,
) -> Result<UsageLimitPolicy> {
    let Some(reference) = reference.filter(|r| !r.is_empty()) else {
        return Ok(UsageLimitPolicy::default());
    };
    let (type_, params) = match plugins.get(reference) {
        Some(plugin) => (plugin.type_.as_str(), plugin.parameters.clone()),
        // Upstream injects the static policy under its type name.
        None if reference == STATIC => (STATIC, None),
        None if reference == HOLDBACK => {
            return Err(invalid(
                FIELD,
                "priority-holdback-policy needs parameters (at least `minCeiling`); list it under \
                 `plugins` with them and reference that entry's name",
            ));
        }
        None => {
            return Err(invalid(
                FIELD,
                format!("`{reference}` names no entry of `plugins`"),
            ));
        }
    };
    let params = params.unwrap_or(Value::Null);
    match type_ {
        STATIC => {
            let p: StaticParameters = parameters(type_, params)?;
            let threshold = p.threshold.unwrap_or(DEFAULT_THRESHOLD);
            if !(threshold > 0.0 && threshold <= 1.0) {
                return Err(invalid(
                    "static-usage-limit-policy.threshold",
                    format!("{threshold} must be in (0, 1]; 1.0 gates nothing, 0.8 keeps 20% free"),
                ));
            }
            Ok(UsageLimitPolicy::Static { threshold })
        }
        HOLDBACK => holdback(parameters(type_, params)?),
        "soft-reflective-ceiling-policy" => Err(invalid(
            FIELD,
            "soft-reflective-ceiling-policy is not supported by Switchyard; use \
             priority-holdback-policy (fixed per-priority ceilings) instead",
        )),
        other => Err(invalid(
            FIELD,
            format!(
                "`{reference}` has type `{other}`, which is not a usage limit policy; use \
                 static-usage-limit-policy or priority-holdback-policy"
            ),
        )),
    }
}

fn holdback(p: HoldbackParameters) -> Result<UsageLimitPolicy> {
    const AT: &str = "priority-holdback-policy";
    let field = |name: &str| format!("{AT}.{name}");
    let domain = match (p.domain.as_deref(), p.strategy.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                AT,
                "set `domain` or the older `strategy`, not both",
            ));
        }
        (Some(domain), None) => domain,
        (None, Some("stepwise-spread")) => "rank",
        (None, Some("linear-proportional")) => "value",
        (None, Some(other)) => {
            return Err(invalid(
                &field("strategy"),
                format!("`{other}` must be stepwise-spread or linear-proportional"),
            ));
        }
        (None, None) => "rank",
    };
    if domain == "explicit" {
        if p.shape.is_some() || p.min_ceiling.is_some() || p.max_ceiling.is_some() {
            return Err(invalid(
                AT,
                "with `domain: explicit` only `ceilings` applies; remove shape, minCeiling and maxCeiling",
            ));
        }
        let Some(raw) = p.ceilings.filter(|c| !c.is_empty()) else {
            return Err(invalid(
                &field("ceilings"),
                "`domain: explicit` needs `ceilings`, a map from priority to ceiling, e.g. {1: 1.0, 0: 0.8, -1: 0.5}",
            ));
        };
        let mut ceilings = BTreeMap::new();
        for (key, ceiling) in raw {
            let priority: i64 = key.trim().parse().map_err(|_| {
                invalid(
                    &field("ceilings"),
                    format!("key `{key}` is not an integer priority"),
                )
            })?;
            if !(0.0..=1.0).contains(&ceiling) {
                return Err(invalid(
                    &field("ceilings"),
                    format!(
                        "the ceiling of priority {priority} is {ceiling}; it must be in [0, 1]"
                    ),
                ));
            }
            ceilings.insert(priority, ceiling);
        }
        // Ceilings may not rise as priority falls: that would let a lower band
        // dispatch while a higher one is held back.
        let mut higher: Option<(i64, f64)> = None;
        for (&priority, &ceiling) in ceilings.iter().rev() {
            if let Some((above, limit)) = higher
                && ceiling > limit
            {
                return Err(invalid(
                    &field("ceilings"),
                    format!(
                        "priority {priority} has ceiling {ceiling}, above the {limit} of priority \
                         {above}; ceilings must not increase as priority falls"
                    ),
                ));
            }
            higher = Some((priority, ceiling));
        }
        return Ok(UsageLimitPolicy::Explicit(ceilings));
    }
    let by_value = match domain {
        "rank" => false,
        "value" => true,
        other => {
            return Err(invalid(
                &field("domain"),
                format!("`{other}` must be rank, value or explicit"),
            ));
        }
    };
    if let Some(shape) = p.shape.as_deref().filter(|s| *s != "linear") {
        return Err(invalid(
            &field("shape"),
            format!("`{shape}` is not supported; the only shape is `linear`"),
        ));
    }
    if p.ceilings.is_some() {
        return Err(invalid(
            &field("ceilings"),
            "`ceilings` applies only with `domain: explicit`",
        ));
    }
    let Some(min_ceiling) = p.min_ceiling else {
        return Err(invalid(
            &field("minCeiling"),
            "required: the ceiling of the lowest priority, in [0, 1), e.g. 0.5",
        ));
    };
    let max_ceiling = p.max_ceiling.unwrap_or(DEFAULT_THRESHOLD);
    if !(0.0..1.0).contains(&min_ceiling) {
        return Err(invalid(
            &field("minCeiling"),
            format!("{min_ceiling} must be in [0, 1)"),
        ));
    }
    if !(max_ceiling > 0.0 && max_ceiling <= 1.0) {
        return Err(invalid(
            &field("maxCeiling"),
            format!("{max_ceiling} must be in (0, 1]"),
        ));
    }
    if min_ceiling >= max_ceiling {
        return Err(invalid(
            AT,
            format!("minCeiling ({min_ceiling}) must be below maxCeiling ({max_ceiling})"),
        ));
    }
    Ok(UsageLimitPolicy::Spread {
        by_value,
        min_ceiling,
        max_ceiling,
    })
}

fn parameters<T: serde::de::DeserializeOwned + Default>(type_: &str, value: Value) -> Result<T> {
    if value.is_null() {
        return Ok(T::default());
    }
    crate::parameters::decode(value).map_err(|err| invalid(&format!("{type_}.parameters"), err))
}
