//! `switchyard-check`: checks Kubernetes manifests for InferencePools,
//! InferenceObjectives, InferenceModelRewrites, legacy InferenceModels and the
//! HTTPRoutes that point at them, offline, before `kubectl apply`.
//!
//! The rules live in the `switchyard_check` library; this binary only finds files, reads
//! them, prints findings and picks the exit code.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use switchyard_check::{self as check, Document};

/// Exit code when every document is fine.
const OK: u8 = 0;
/// Exit code when at least one document has a problem.
const FINDINGS: u8 = 1;
/// Exit code when a file could not be read or is not valid YAML (wins over 1).
const UNREADABLE: u8 = 2;

/// Check InferencePool, InferenceObjective, InferenceModelRewrite, legacy
/// InferenceModel and HTTPRoute manifests offline.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Every YAML document is read; documents of other kinds (Deployment, Service, Gateway…) are
skipped but counted. References to InferencePools (HTTPRoute backendRefs, poolRefs) are
resolved among all the files given, whenever they contain at least one InferencePool.

Output: one line per problem, `FILE:DOC: KIND/NAME: FIELD: MESSAGE`, where DOC is the
1-based position of the document in FILE (empty and comment-only documents are not
counted). Helm templates are not rendered: run `helm template` first.

Lines whose message starts with `warning:` never change the exit status.

Exit status: 0 when every document is fine (a one-line summary is printed), 1 when any
document has a problem, 2 when a file cannot be read or is not valid YAML."
)]
struct Args {
    /// Manifest files, or directories to search recursively for *.yaml and *.yml.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let mut status = OK;
    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(problem) = collect(path, &mut files) {
            let _ = writeln!(err, "{}: cannot read: {problem}", path.display());
            status = UNREADABLE;
        }
    }
    let mut documents: Vec<Document> = Vec::new();
    for file in &files {
        let source = file.display().to_string();
        let parsed = fs::read(file)
            .map_err(|problem| format!("{source}: cannot read: {problem}"))
            .and_then(|bytes| {
                check::parse_bytes(&source, &bytes).map_err(|syntax| match &syntax.snippet {
                    Some(snippet) => format!("{syntax}\n{snippet}"),
                    None => syntax.to_string(),
                })
            });
        match parsed {
            Ok(parsed) => documents.extend(parsed),
            Err(message) => {
                let _ = writeln!(err, "{message}");
                status = UNREADABLE;
            }
        }
    }
    let findings = check::check_documents(&documents);
    for finding in &findings {
        let _ = writeln!(out, "{finding}");
    }
    let tally = check::tally(&documents);
    let summary = format!(
        "{} in {} ({} checked, {} other {})",
        count(documents.len(), "document", "documents"),
        count(files.len(), "file", "files"),
        tally.checked,
        tally.other,
        if tally.other == 1 { "kind" } else { "kinds" },
    );
    // Warnings are printed but never fail the check.
    let failing = findings.iter().filter(|finding| finding.fails()).count();
    if failing > 0 {
        let problems = count(failing, "problem", "problems");
        let _ = writeln!(err, "{problems} in {summary}");
        status = status.max(FINDINGS);
    } else if status == OK {
        let _ = writeln!(out, "ok: {summary}");
    }
    ExitCode::from(status)
}

/// Adds `path` (a file, taken as is) or the YAML files under it (a directory,
/// walked in name order so output is stable) to `files`.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    if !fs::metadata(path)?.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries = fs::read_dir(path)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let entry_path = entry.path();
        // `file_type` does not follow symlinks, so a link cycle cannot loop us;
        // a linked file is still read.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect(&entry_path, files)?;
        } else if is_yaml(&entry_path) && fs::metadata(&entry_path).is_ok_and(|m| m.is_file()) {
            files.push(entry_path);
        }
    }
    Ok(())
}

/// `1 file`, `2 files`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extension == "yaml" || extension == "yml")
}
