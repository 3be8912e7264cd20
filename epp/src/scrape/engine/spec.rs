//! Metric selectors in upstream's syntax: `name` or `name{label=value,…}`.

use crate::error::{Error, Result};
use switchyard_runtime::promtext::{Exposition, Sample};

/// A selector for the samples of one metric, optionally narrowed by exact
/// label values (e.g. `nv_trt_llm_request_metrics{request_type=waiting}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    /// The metric name.
    pub name: String,
    /// Labels every matching sample must carry with exactly these values.
    pub labels: Vec<(String, String)>,
}

// === impl MetricSpec ===

impl MetricSpec {
    /// Parses a selector; `field` names the config field for error messages.
    /// Label values may be bare or double-quoted.
    pub fn parse(text: &str, field: &'static str) -> Result<Self> {
        let bad = |reason| Error::MetricSpec {
            spec: text.to_owned(),
            field,
            reason,
        };
        let text_trimmed = text.trim();
        let (name, rest) = match text_trimmed.find('{') {
            Some(open) => text_trimmed.split_at(open),
            None => (text_trimmed, ""),
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(bad("the metric name is empty"));
        }
        if !name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        }) {
            return Err(bad(
                "the metric name may hold only letters, digits, `_` and `:`",
            ));
        }
        let mut labels = Vec::new();
        if !rest.is_empty() {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| bad("the label list must end with `}`"))?;
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| bad("each label needs `label=value`"))?;
                let key = key.trim();
                if key.is_empty() {
                    return Err(bad("a label name is empty"));
                }
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                labels.push((key.to_owned(), value.to_owned()));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            labels,
        })
    }

    /// Builds a selector from trusted built-in text.
    pub(crate) fn builtin(name: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Whether `sample` is selected.
    pub fn matches(&self, sample: &Sample<'_>) -> bool {
        sample.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| sample.label(k).is_some_and(|actual| actual == v.as_str()))
    }

    /// The selected sample to trust when several match: the one with the
    /// newest timestamp, and among equals (or without timestamps) the first.
    pub fn latest<'e, 'a>(&self, page: &'e Exposition<'a>) -> Option<&'e Sample<'a>> {
        let mut best: Option<&Sample<'a>> = None;
        for sample in page.samples.iter().filter(|s| self.matches(s)) {
            let newer = match best {
                None => true,
                Some(b) => {
                    sample.timestamp_ms.unwrap_or(i64::MIN) > b.timestamp_ms.unwrap_or(i64::MIN)
                }
            };
            if newer {
                best = Some(sample);
            }
        }
        best
    }
}

impl std::fmt::Display for MetricSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}
