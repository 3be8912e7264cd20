//! Turning YAML text into [`Document`]s: one per YAML document, each with its
//! position in the file, so every finding can point back at it.
//!
//! The file is split on document markers (`---`, `...`) here rather than by the
//! YAML library, because the library drops empty and null documents from its
//! multi-document API and the positions of the rest would shift. YAML forbids a
//! line that starts with `---` or `...` inside any scalar, so a marker at column
//! 0 always separates documents and the split is exact.

use std::fmt;

use serde_json::Value;

/// One parsed YAML document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Where the document came from, as shown in findings (usually a file path).
    pub source: String,
    /// The document's 1-based position among the non-empty documents of its source.
    pub index: usize,
    /// The 1-based line on which the document starts.
    pub line: usize,
    /// The document's content.
    pub value: Value,
}

/// A source that is not valid YAML (or holds YAML no manifest can be made of).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The source, as given to [`parse_documents`].
    pub source: String,
    /// 1-based line of the problem, when the parser knows it.
    pub line: Option<u64>,
    /// 1-based column of the problem, when the parser knows it.
    pub column: Option<u64>,
    /// What is wrong, without the location.
    pub message: String,
    /// The offending lines with a caret under the problem, when available.
    pub snippet: Option<String>,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}: ", self.source)?,
            (Some(line), None) => write!(f, "{}:{line}: ", self.source)?,
            _ => write!(f, "{}: ", self.source)?,
        }
        write!(f, "invalid YAML: {}", self.message)
    }
}

/// Parses every document of `text`; `source` names it in documents and errors.
///
/// Documents holding only comments, directives or blank lines are skipped and not
/// counted, so `index` matches what a reader counts in the file.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<Document>, SyntaxError> {
    // A byte-order mark is legal at the start of a YAML stream but not a character of it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    for chunk in split(text) {
        if !has_content(chunk.text) {
            continue;
        }
        let value = parse_chunk(source, &chunk)?;
        documents.push(Document {
            source: source.to_owned(),
            index: documents.len() + 1,
            line: chunk.first_line,
            value,
        });
    }
    Ok(documents)
}

/// Like [`parse_documents`], for raw bytes that may not be UTF-8.
pub fn parse_bytes(source: &str, bytes: &[u8]) -> Result<Vec<Document>, SyntaxError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_documents(source, text),
        Err(error) => {
            // Count the lines before the bad byte so the user can find it.
            let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            Err(SyntaxError {
                source: source.to_owned(),
                line: u64::try_from(line).ok(),
                column: None,
                message: "the file is not UTF-8 text (a manifest must be UTF-8)".to_owned(),
                snippet: None,
            })
        }
    }
}

/// A slice of the input holding at most one document.
struct Chunk<'a> {
    text: &'a str,
    /// 1-based line number of the chunk's first line.
    first_line: usize,
}

/// Splits `text` before every `---` marker line and after every `...` marker line.
fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (number, line) in (1..).zip(text.split_inclusive('\n')) {
        let end = offset + line.len();
        if is_marker(line, "---") && offset > start {
            chunks.push(Chunk {
                text: text.get(start..offset).unwrap_or_default(),
                first_line: start_line,
            });
            start = offset;
            start_line = number;
        }
        if is_marker(line, "...") {
            chunks.push(Chunk {
                text: text.get(start..end).unwrap_or_default(),
                first_line: start_line,
            });
            start = end;
            start_line = number + 1;
        }
        offset = end;
    }
    if start < text.len() {
        chunks.push(Chunk {
            text: text.get(start..).unwrap_or_default(),
            first_line: start_line,
        });
    }
    chunks
}

/// Whether `line` is the document marker `marker`, alone or followed by whitespace.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Whether a chunk holds anything besides markers, directives, comments and blanks.
fn has_content(chunk: &str) -> bool {
    chunk.lines().any(|line| {
        let line = if is_marker(line, "---") || is_marker(line, "...") {
            line.get(3..).unwrap_or_default()
        } else if line.starts_with('%') {
            return false;
        } else {
            line
        };
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })
}

fn parse_chunk(source: &str, chunk: &Chunk<'_>) -> Result<Value, SyntaxError> {
    serde_saphyr::from_str::<Value>(chunk.text).map_err(|error| {
        let offset = u64::try_from(chunk.first_line.saturating_sub(1)).unwrap_or(0);
        let location = error.location();
        let line = location.map(|l| l.line().saturating_add(offset));
        let column = location.map(|l| l.column());
        // Rendered without a snippet, the library appends " at line L, column C";
        // the location is already in front of our message, so drop it.
        let plain = error.render_with_options(serde_saphyr::render_options! {
            line_offset: offset,
            snippets: serde_saphyr::SnippetMode::Off,
        });
        let message = match (line, column) {
            (Some(line), Some(column)) => plain
                .strip_suffix(&format!(" at line {line}, column {column}"))
                .map_or_else(|| plain.clone(), str::to_owned),
            _ => plain,
        };
        let message = explain(&message, line.and_then(|line| line_of(chunk, line)));
        let rendered = error.render_with_options(serde_saphyr::render_options! {
            line_offset: offset,
            source_name: Some(source),
        });
        // The first rendered line repeats the message; keep only the code excerpt.
        let snippet = rendered
            .split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .filter(|rest| !rest.trim().is_empty());
        SyntaxError {
            source: source.to_owned(),
            line,
            column,
            message,
            snippet,
        }
    })
}

/// The text of file line `line`, if it falls in `chunk`.
fn line_of<'a>(chunk: &Chunk<'a>, line: u64) -> Option<&'a str> {
    let first = u64::try_from(chunk.first_line).ok()?;
    let skip = usize::try_from(line.checked_sub(first)?).ok()?;
    chunk.text.lines().nth(skip)
}

/// Rewords the parser's messages where the usual cause is known.
fn explain(message: &str, line: Option<&str>) -> String {
    if line.is_some_and(|line| line.contains("{{")) {
        return format!(
            "{message}: this looks like an unrendered Helm template; check the output of `helm template` instead"
        );
    }
    // The parser's advice is for its API's callers, not for manifest authors.
    if let Some(key) = message
        .strip_prefix("duplicate mapping key: ")
        .and_then(|rest| rest.strip_suffix(", set DuplicateKeyPolicy in Options if acceptable"))
    {
        return format!(
            "duplicate key {key:?}: a key may appear once per mapping (lost indentation often causes this)"
        );
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(text: &str) -> Vec<(usize, usize, Value)> {
        parse_documents("t.yaml", text)
            .unwrap()
            .into_iter()
            .map(|d| (d.index, d.line, d.value))
            .collect()
    }

    #[test]
    fn keeps_positions_across_empty_documents() {
        let text = "# header\n---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n";
        assert_eq!(
            values(text),
            vec![(1, 3, json!({"a": 1})), (2, 7, json!({"b": 2}))]
        );
    }

    #[test]
    fn content_on_the_marker_line_belongs_to_the_document() {
        assert_eq!(
            values("--- {a: 1}\n--- [2]\n"),
            vec![(1, 1, json!({"a": 1})), (2, 2, json!([2]))]
        );
    }

    #[test]
    fn marker_inside_block_scalar_text_is_not_a_split() {
        // Indented `---` is scalar text; only column 0 marks a document.
        let text = "data: |\n  ---\n  x\nb: 1\n";
        assert_eq!(
            values(text),
            vec![(1, 1, json!({"data": "---\nx\n", "b": 1}))]
        );
    }

    #[test]
    fn directives_and_bom_are_not_documents() {
        assert_eq!(
            values("\u{feff}%YAML 1.2\n---\na: 1\n"),
            vec![(1, 2, json!({"a": 1}))]
        );
    }

    #[test]
    fn syntax_error_has_file_line_and_column() {
        let error = parse_documents("bad.yaml", "a: 1\n---\nb:\n  c: 1\n d: 2\n").unwrap_err();
        assert_eq!((error.line, error.column), (Some(5), Some(2)));
        assert_eq!(
            error.to_string(),
            "bad.yaml:5:2: invalid YAML: while parsing a block mapping, did not find expected key"
        );
        assert!(error.snippet.unwrap().contains("bad.yaml:5:2"));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let error = parse_documents("d.yaml", "a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert_eq!(
            error.message,
            "duplicate key \"a\": a key may appear once per mapping (lost indentation often causes this)"
        );
    }

    #[test]
    fn not_utf8_is_an_error_with_its_line() {
        let error = parse_bytes("b.yaml", b"a: 1\nb: \xff\xfe\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(
            error
                .to_string()
                .starts_with("b.yaml:2: invalid YAML: the file is not UTF-8")
        );
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: [&[u8]; 12] = [
            b"",
            b"\x00\x01\x02",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            b"{{ .Values.image }}",
            b"a: &a [*a]",
            b"? [a, b]\n: c\n",
            b"key: \"unterminated\n",
            b"---\n...\n---\n...\n",
            b"- - - - -\n",
            b"!!binary aGVsbG8=",
            b"a: .nan\n",
            b"\t\t: :\n",
        ];
        for input in inputs {
            let _ = parse_bytes("g.yaml", input);
        }
        let deep = "a:\n".to_owned()
            + &(1..200)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect::<String>();
        assert!(parse_documents("deep.yaml", &deep).is_err());
    }
}
