//! A strict little parser for the Prometheus text format (0.0.4).
//!
//! Written for tests and scrapers that need the `vllm:`-style names with colons, which some
//! parser crates silently drop. It checks what a scraper relies on: metric and label name
//! syntax, quoted and escaped label values, numeric values (including `+Inf`/`NaN`),
//! optional timestamps and well-formed `# TYPE` lines.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::SimError;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as written on the line (with `_total`, `_bucket`… suffixes).
    pub name: String,
    /// Labels in order of appearance.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// Value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// Family name → type from `# TYPE` lines.
    pub types: BTreeMap<String, String>,
}

impl Exposition {
    /// The first sample called `name` whose labels include all of `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels).map(|s| s.value)
    }

    /// Like [`Self::get`] but returns the whole sample.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }

    /// Distinct sample names.
    pub fn names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }

    /// Whether a family is present under `name`: a sample with that exact name, or a
    /// histogram/summary whose `_count` sample exists.
    pub fn has(&self, name: &str) -> bool {
        let count = format!("{name}_count");
        self.samples
            .iter()
            .any(|s| s.name == name || s.name == count)
    }
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, SimError> {
    let mut exp = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err =
            |what: &str| SimError::BadRequest(format!("metrics line {}: {what}: {raw}", i + 1));
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.split_whitespace();
            if parts.next() == Some("TYPE") {
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    return Err(err("incomplete TYPE line"));
                };
                if !valid_metric_name(name) {
                    return Err(err("bad metric name"));
                }
                if !matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(err("unknown type"));
                }
                exp.types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        exp.samples.push(parse_sample(line).map_err(err)?);
    }
    Ok(exp)
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err("bad metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| "bad timestamp")?;
    }
    if fields.next().is_some() {
        return Err("trailing garbage");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `k="v",…}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut s: &'a str,
    out: &mut Vec<(String, String)>,
) -> Result<&'a str, &'static str> {
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let eq = s.find('=').ok_or("label without =")?;
        let key = s[..eq].trim();
        if !valid_label_name(key) {
            return Err("bad label name");
        }
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '"' => break i,
                '\\' => match chars.next().ok_or("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    _ => return Err("bad escape"),
                },
                c => value.push(c),
            }
        };
        out.push((key.to_owned(), value));
        s = s[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected , or }");
        }
    }
}

fn parse_value(v: &str) -> Result<f64, &'static str> {
    match v {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|_| "bad value"),
    }
}

fn valid_metric_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_colon_names_labels_and_specials() {
        let text = "# HELP vllm:x help text\n# TYPE vllm:x gauge\n\
                    vllm:x{model_name=\"m\",running_lora_adapters=\"a,b\"} 0.5\n\
                    h_bucket{le=\"+Inf\"} 3 1700000000000\n\
                    e{v=\"q\\\"uote\\\\\",} NaN\n";
        let exp = parse(text).unwrap();
        assert_eq!(
            exp.get("vllm:x", &[("running_lora_adapters", "a,b")]),
            Some(0.5)
        );
        assert_eq!(exp.types.get("vllm:x").map(String::as_str), Some("gauge"));
        assert_eq!(exp.find("e", &[]).unwrap().label("v"), Some("q\"uote\\"));
        assert!(exp.get("h_bucket", &[("le", "+Inf")]) == Some(3.0));
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "1bad 1",
            "x{a=b} 1",
            "x{a=\"b\" 1",
            "x one",
            "x 1 2 3",
            "# TYPE x weird",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
