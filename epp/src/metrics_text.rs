//! A Prometheus text-format (0.0.4) parser for model-server `/metrics` pages.
//!
//! Written by hand because the `prometheus-parse` crate silently drops every
//! metric whose name contains a colon, i.e. all of vLLM's and SGLang's
//! (`vllm:num_requests_waiting`). The parser borrows from the page: a
//! [`Sample`] holds slices of the input, and label values are unescaped only
//! when read. A line it cannot parse is counted and skipped, never fatal, so a
//! model server that emits one odd line still gets scheduled on the rest; no
//! input makes it panic.

use std::borrow::Cow;

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The metric name, colons included.
    pub name: &'a str,
    /// The text between `{` and `}` (already validated), empty without labels.
    raw_labels: &'a str,
    /// The value; `NaN`, `+Inf` and `-Inf` are kept as such.
    pub value: f64,
    /// The optional timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

/// A parsed exposition: its samples in page order plus the number of lines
/// that were neither samples nor comments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition<'a> {
    /// Every sample, in the order of the page.
    pub samples: Vec<Sample<'a>>,
    /// How many non-empty, non-comment lines could not be parsed.
    pub malformed_lines: usize,
}

/// Why one line is not a sample; internal, since bad lines are only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineError {
    Name,
    Labels,
    Value,
    Timestamp,
    Trailing,
}

// === impl Exposition ===

impl<'a> Exposition<'a> {
    /// Parses a whole page. Comments (`# HELP`, `# TYPE`, anything after `#`)
    /// and blank lines are skipped; malformed lines are counted.
    pub fn parse(text: &'a str) -> Self {
        let mut exposition = Self::default();
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_sample(line) {
                Ok(sample) => exposition.samples.push(sample),
                Err(_) => exposition.malformed_lines += 1,
            }
        }
        exposition
    }

    /// The samples named `name`, in page order.
    pub fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Sample<'a>> + 's {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

// === impl Sample ===

impl<'a> Sample<'a> {
    /// The labels as `(name, unescaped value)` pairs, in order.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            rest: self.raw_labels,
        }
    }

    /// The unescaped value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<Cow<'a, str>> {
        self.labels().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Iterator over a sample's labels. The label text was validated when the
/// sample was parsed, so iteration cannot fail; should it meet something
/// unexpected anyway it simply ends.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let (pair, rest) = next_label(self.rest).ok()??;
        self.rest = rest;
        Some((pair.0, unescape(pair.1)))
    }
}

// === parsing ===

fn parse_sample(line: &str) -> Result<Sample<'_>, LineError> {
    let name_len = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0, true))
        .map_or(line.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(LineError::Name);
    }
    let (name, after_name) = line.split_at(name_len);

    let (raw_labels, rest) = match after_name.trim_start().strip_prefix('{') {
        Some(inner) => {
            let end = validate_labels(inner)?;
            let (labels, after) = inner.split_at(end);
            // `after` starts with the closing brace.
            (labels, after.get(1..).unwrap_or(""))
        }
        // Without labels, whitespace must end the name: `name+1` is not a sample.
        None if after_name.starts_with([' ', '\t']) => ("", after_name),
        None => return Err(LineError::Name),
    };

    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .ok_or(LineError::Value)
        .and_then(parse_value)?;
    let timestamp_ms = match fields.next() {
        Some(ts) => Some(ts.parse::<i64>().map_err(|_| LineError::Timestamp)?),
        None => None,
    };
    if fields.next().is_some() {
        return Err(LineError::Trailing);
    }
    Ok(Sample {
        name,
        raw_labels,
        value,
        timestamp_ms,
    })
}

/// Prometheus spells the special values `NaN`, `+Inf` and `-Inf`; Rust's float
/// parser accepts those (case-insensitively) as well as ordinary numbers.
fn parse_value(text: &str) -> Result<f64, LineError> {
    text.parse::<f64>().map_err(|_| LineError::Value)
}

/// Checks the label section that follows `{` and returns the offset of the
/// closing `}`.
fn validate_labels(inner: &str) -> Result<usize, LineError> {
    let mut rest = inner;
    loop {
        match next_label(rest)? {
            Some((_, after)) => rest = after,
            None => {
                let trimmed = rest.trim_start();
                if !trimmed.starts_with('}') {
                    return Err(LineError::Labels);
                }
                return Ok(inner.len() - trimmed.len());
            }
        }
    }
}

/// Reads one `name="value"` pair (plus a following comma, if any) from the
/// start of `text`. `Ok(None)` at the closing brace.
#[allow(clippy::type_complexity)]
fn next_label(text: &str) -> Result<Option<((&str, &str), &str)>, LineError> {
    let text = text.trim_start();
    if text.is_empty() || text.starts_with('}') {
        return Ok(None);
    }
    let name_len = text
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0, false))
        .map_or(text.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(LineError::Labels);
    }
    let (name, rest) = text.split_at(name_len);
    let rest = rest
        .trim_start()
        .strip_prefix('=')
        .ok_or(LineError::Labels)?
        .trim_start()
        .strip_prefix('"')
        .ok_or(LineError::Labels)?;
    let close = closing_quote(rest).ok_or(LineError::Labels)?;
    let (value, rest) = rest.split_at(close);
    let rest = rest.get(1..).unwrap_or("").trim_start();
    // A pair ends at a comma or at the closing brace; anything else is junk.
    let rest = match rest.strip_prefix(',') {
        Some(after_comma) => after_comma,
        // Empty: the end of an already-validated label section.
        None if rest.starts_with('}') || rest.is_empty() => rest,
        None => return Err(LineError::Labels),
    };
    Ok(Some(((name, value), rest)))
}

/// The byte offset of the first `"` not escaped by a backslash.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names the same without colons.
fn is_name_char(c: char, first: bool, colon_allowed: bool) -> bool {
    c.is_ascii_alphabetic()
        || c == '_'
        || (colon_allowed && c == ':')
        || (!first && c.is_ascii_digit())
}

/// Undoes the three escapes of the text format: `\\`, `\"` and `\n`. Any other
/// backslash is kept as written, as Prometheus does.
fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
