//! The line scanners behind [`super::Lines`]: one sample line, one `# TYPE` line, label
//! pairs and label-value escapes. Each works on borrowed slices and never panics.

use std::borrow::Cow;

use super::{MetricType, Problem, Sample};

/// Parses one sample line (already trimmed at the start, not a comment). `strict` rejects
/// escapes other than `\\`, `\"` and `\n` in label values.
pub(super) fn sample(line: &str, strict: bool) -> Result<Sample<'_>, Problem> {
    let name = leading_name(line);
    if name.is_empty() {
        return Err(Problem::Name);
    }
    let after_name = &line[name.len()..];

    let (raw_labels, rest) = match after_name.trim_start().strip_prefix('{') {
        Some(inner) => {
            let end = validate_labels(inner, strict)?;
            let (labels, after) = inner.split_at(end);
            // `after` starts with the closing brace.
            (labels, after.get(1..).unwrap_or(""))
        }
        // Without labels, whitespace must end the name: `name+1` is not a sample.
        None if after_name.starts_with([' ', '\t']) => ("", after_name),
        None => return Err(Problem::Name),
    };

    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next().ok_or(Problem::Value).and_then(value)?;
    let timestamp_ms = match fields.next() {
        Some(ts) => Some(ts.parse::<i64>().map_err(|_| Problem::Timestamp)?),
        None => None,
    };
    if fields.next().is_some() {
        return Err(Problem::Trailing);
    }
    Ok(Sample {
        name,
        raw_labels,
        value,
        timestamp_ms,
    })
}

/// Reads the text after `#`: `Ok(None)` for any comment that is not a `TYPE` line.
pub(super) fn type_line(comment: &str) -> Result<Option<(&str, MetricType)>, Problem> {
    let mut words = comment.split_ascii_whitespace();
    if words.next() != Some("TYPE") {
        return Ok(None);
    }
    let (Some(family), Some(kind), None) = (words.next(), words.next(), words.next()) else {
        return Err(Problem::TypeLine);
    };
    if leading_name(family) != family || family.is_empty() {
        return Err(Problem::TypeLine);
    }
    let kind = match kind {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Untyped,
        _ => return Err(Problem::UnknownType),
    };
    Ok(Some((family, kind)))
}

/// The longest prefix of `line` that is a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub(super) fn leading_name(line: &str) -> &str {
    let len = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0, true))
        .map_or(line.len(), |(i, _)| i);
    &line[..len]
}

/// Prometheus spells the special values `NaN`, `+Inf` and `-Inf`; Rust's float parser
/// accepts those (case-insensitively) as well as ordinary numbers.
fn value(text: &str) -> Result<f64, Problem> {
    text.parse::<f64>().map_err(|_| Problem::Value)
}

/// Checks the label section that follows `{` and returns the offset of the closing `}`.
fn validate_labels(inner: &str, strict: bool) -> Result<usize, Problem> {
    let mut rest = inner;
    loop {
        match next_label(rest)? {
            Some(((_, value), after)) => {
                if strict && !escapes_are_known(value) {
                    return Err(Problem::Escape);
                }
                rest = after;
            }
            None => {
                let trimmed = rest.trim_start();
                if !trimmed.starts_with('}') {
                    return Err(Problem::Labels);
                }
                return Ok(inner.len() - trimmed.len());
            }
        }
    }
}

/// One `name="value"` pair as raw slices, and the text after it.
type LabelPair<'a> = ((&'a str, &'a str), &'a str);

/// Reads one `name="value"` pair (plus a following comma, if any) from the start of
/// `text`. `Ok(None)` at the closing brace.
pub(super) fn next_label(text: &str) -> Result<Option<LabelPair<'_>>, Problem> {
    let text = text.trim_start();
    if text.is_empty() || text.starts_with('}') {
        return Ok(None);
    }
    let name_len = text
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0, false))
        .map_or(text.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(Problem::Labels);
    }
    let (name, rest) = text.split_at(name_len);
    let rest = rest
        .trim_start()
        .strip_prefix('=')
        .ok_or(Problem::Labels)?
        .trim_start()
        .strip_prefix('"')
        .ok_or(Problem::Labels)?;
    let close = closing_quote(rest).ok_or(Problem::Labels)?;
    let (value, rest) = rest.split_at(close);
    let rest = rest.get(1..).unwrap_or("").trim_start();
    // A pair ends at a comma or at the closing brace; anything else is junk.
    let rest = match rest.strip_prefix(',') {
        Some(after_comma) => after_comma,
        // Empty: the end of an already-validated label section.
        None if rest.starts_with('}') || rest.is_empty() => rest,
        None => return Err(Problem::Labels),
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

/// Whether every backslash in a raw label value starts one of the format's three escapes.
fn escapes_are_known(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' && !matches!(bytes.next(), Some(b'\\' | b'"' | b'n')) {
            return false;
        }
    }
    true
}

/// Undoes the three escapes of the text format: `\\`, `\"` and `\n`. Any other backslash is
/// kept as written, as Prometheus does (strict mode rejected those already).
pub(super) fn unescape(raw: &str) -> Cow<'_, str> {
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
