//! Rewriting the two weights of one HTTPRoute rule in a manifest file, and
//! nothing else.
//!
//! The file is the user's: comments, key order, quoting and the other
//! documents must survive. So the new text is a surgical edit of the two
//! `weight:` lines (or an inserted line where a weight was unset), and it is
//! only written after a check: the edited file, parsed again, must equal the
//! original with the same guarded JSON Patch the Kubernetes controller sends
//! ([`crate::route::weight_patch`]) applied. Whatever the edit cannot do
//! safely (flow-style backendRefs, a surprising layout) is refused with an
//! error saying what to write instead, never written half-right.

use std::path::Path;

use serde_json::Value;
use switchyard_api::HttpRoute;
use switchyard_api::rollout::{BackendTarget, RouteTarget, Weights};
use switchyard_check::parse_documents;

use crate::error::{Error, Result};
use crate::route::{self, RouteView};

/// One HTTPRoute found in a manifest file.
#[derive(Clone, Debug)]
pub struct RouteDocument {
    /// The parsed route.
    pub route: HttpRoute,
    /// The route as a JSON value, for the patch check.
    pub value: Value,
    /// The 1-based line on which its document starts.
    pub first_line: usize,
    /// Where the rollout's rule and backends sit, with their weights.
    pub view: RouteView,
}

/// Finds the HTTPRoute named `target.name` in `text` and the rollout's two
/// backends in its rule.
pub fn find(
    source: &str,
    text: &str,
    target: &RouteTarget,
    stable: &BackendTarget,
    canary: &BackendTarget,
) -> Result<RouteDocument> {
    let documents = parse_documents(source, text).map_err(|err| local(source, err.to_string()))?;
    let document = documents
        .into_iter()
        .find(|doc| {
            doc.value["kind"] == "HTTPRoute" && doc.value["metadata"]["name"] == *target.name
        })
        .ok_or_else(|| local(source, format!("no HTTPRoute named {:?}", target.name)))?;
    let route: HttpRoute = serde_json::from_value(document.value.clone())
        .map_err(|err| local(source, format!("HTTPRoute {:?}: {err}", target.name)))?;
    let mut view = route::locate(&route, target, stable, canary)?;
    // A file has no metadata.generation and no gateway status. The translator
    // applies whatever the file holds, so the parents count as accepting it,
    // and the document's content hash stands in for the generation: any edit,
    // ours or not, gives a new one, as on a cluster.
    view.generation = Some(content_generation(&document.value));
    view.parents_accepted = true;
    Ok(RouteDocument {
        route,
        value: document.value,
        first_line: document.line,
        view,
    })
}

/// The text of the file with the rule's two weights set to `desired`.
///
/// Refuses with [`Error::Conflict`] when the file no longer holds the weights
/// `expected` (someone edited them: the drift path), like the apiserver
/// refusing the guarded patch.
pub fn rewrite(
    source: &str,
    text: &str,
    target: &RouteTarget,
    stable: &BackendTarget,
    canary: &BackendTarget,
    expected: &RouteView,
    desired: Weights,
) -> Result<String> {
    let found = find(source, text, target, stable, canary)?;
    if (found.view.stable_weight, found.view.canary_weight)
        != (expected.stable_weight, expected.canary_weight)
    {
        return Err(Error::Conflict {
            route: target.name.clone(),
        });
    }
    let patch = route::weight_patch(&found.route, &found.view, &target.rule_name, desired)?;
    let mut wanted = found.value.clone();
    json_patch::patch(&mut wanted, &patch).map_err(|_| Error::Conflict {
        route: target.name.clone(),
    })?;

    let edited = edit_lines(text, &found, target, stable, canary, desired).map_err(|message| {
        local(
            source,
            format!(
                "cannot rewrite the weights of rule {:?} in place ({message}); write its \
                 backendRefs in block style, one `name:` and one `weight:` line each",
                target.rule_name
            ),
        )
    })?;
    let reparsed = parse_documents(source, &edited)
        .map_err(|err| local(source, format!("the edit broke the YAML ({err})")))?;
    let same = reparsed
        .iter()
        .any(|doc| doc.line == found.first_line && doc.value == wanted);
    if !same {
        return Err(local(
            source,
            format!(
                "could not rewrite only the weights of rule {:?}; write its backendRefs in block \
                 style, one `name:` and one `weight:` line each",
                target.rule_name
            ),
        ));
    }
    Ok(edited)
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a
/// rename, so a reader (the stack's translator, Envoy's watcher) never sees a
/// half-written route.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.rollout-{}.tmp", std::process::id()));
    let io = |what: &str, err: std::io::Error| {
        local(&path.display().to_string(), format!("{what}: {err}"))
    };
    std::fs::write(&temporary, text).map_err(|err| io("writing the temporary file", err))?;
    if let Err(err) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(io("renaming the temporary file over it", err));
    }
    Ok(())
}

/// A positive stand-in for `metadata.generation`: the hash of the document.
fn content_generation(value: &Value) -> i64 {
    let hash = xxhash_rust::xxh3::xxh3_64(value.to_string().as_bytes());
    i64::try_from(hash >> 1).unwrap_or(i64::MAX)
}

fn local(source: &str, message: String) -> Error {
    Error::LocalFile {
        path: source.to_owned(),
        message,
    }
}

/// The surgical edit. Line numbers come from the document's start; the rule
/// is the `name: <rule>` line after `rules:`, each backend the `name: <backend>`
/// line inside the rule's list item.
fn edit_lines(
    text: &str,
    found: &RouteDocument,
    target: &RouteTarget,
    stable: &BackendTarget,
    canary: &BackendTarget,
    desired: Weights,
) -> Result<String, String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let document_start = found.first_line.saturating_sub(1);
    let document_end = (document_start..lines.len())
        .skip(1)
        .find(|&index| lines[index].trim_end() == "---")
        .unwrap_or(lines.len());
    let rules_line = (document_start..document_end)
        .find(|&index| key_value(&lines[index]).is_some_and(|(_, key, _)| key == "rules"))
        .ok_or("no `rules:` line")?;
    let rule_line = (rules_line..document_end)
        .find(|&index| is_name_line(&lines[index], &target.rule_name))
        .ok_or_else(|| format!("no `name: {}` line under rules", target.rule_name))?;
    let (rule_start, rule_end) = item_range(&lines, rule_line, document_end)?;

    // Edits run from the bottom up, so a line inserted for one backend does
    // not shift the other's line number.
    let mut edits = Vec::new();
    for (backend, weight) in [(stable, desired.stable), (canary, desired.canary)] {
        let name_line = (rule_start + 1..rule_end)
            .find(|&index| is_name_line(&lines[index], &backend.name))
            .ok_or_else(|| {
                format!(
                    "no `name: {}` line in rule {:?}",
                    backend.name, target.rule_name
                )
            })?;
        edits.push((name_line, weight));
    }
    edits.sort_by_key(|edit| std::cmp::Reverse(edit.0));
    for (name_line, weight) in edits {
        let (start, end) = item_range(&lines, name_line, rule_end)?;
        let weight_line = (start..end)
            .find(|&index| key_value(&lines[index]).is_some_and(|(_, key, _)| key == "weight"));
        match weight_line {
            Some(index) => {
                let (column, _, _) = key_value(&lines[index]).ok_or("unreadable weight line")?;
                let line = &lines[index];
                let prefix = &line[..column];
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                lines[index] = format!("{prefix}weight: {weight}{newline}");
            }
            None => {
                let (column, _, _) = key_value(&lines[name_line]).ok_or("unreadable name line")?;
                let newline = if lines[name_line].ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                let indent = " ".repeat(column);
                lines[name_line].push_str(newline);
                lines.insert(name_line + 1, format!("{indent}weight: {weight}\n"));
            }
        }
    }
    Ok(lines.concat())
}

/// `(column of the key, key, value)` of a block-mapping line, the key after an
/// optional `- `; `None` for comments, flow style and anything else.
fn key_value(line: &str) -> Option<(usize, &str, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let mut rest = &line[indent..];
    let mut column = indent;
    if let Some(after) = rest.strip_prefix("- ") {
        let spaces = after.len() - after.trim_start_matches(' ').len();
        column += 2 + spaces;
        rest = &after[spaces..];
    }
    let (key, value) = rest.split_once(':')?;
    if key.is_empty() || key.contains([' ', '{', '[', '#', '"', '\'']) {
        return None;
    }
    let value = value.split(" #").next().unwrap_or("").trim();
    Some((column, key, value))
}

fn is_name_line(line: &str, name: &str) -> bool {
    key_value(line).is_some_and(|(_, key, value)| {
        key == "name" && value.trim_matches(|c| c == '"' || c == '\'') == name
    })
}

/// The list item holding `line`: from its `- ` line to the line before the
/// next line indented no deeper than the dash.
fn item_range(lines: &[String], line: usize, limit: usize) -> Result<(usize, usize), String> {
    let (key_column, _, _) = key_value(&lines[line]).ok_or("unreadable line")?;
    let start = (0..=line)
        .rev()
        .find(|&index| {
            let text = &lines[index];
            let indent = text.len() - text.trim_start_matches(' ').len();
            text[indent..].starts_with("- ") && indent < key_column
        })
        .ok_or("the entry is not a block-style list item")?;
    let dash = lines[start].len() - lines[start].trim_start_matches(' ').len();
    let end = (start + 1..limit)
        .find(|&index| {
            let text = lines[index].trim_end();
            let indent = text.len() - text.trim_start_matches(' ').len();
            !text.trim().is_empty() && !text.trim_start().starts_with('#') && indent <= dash
        })
        .unwrap_or(limit);
    Ok((start, end))
}
