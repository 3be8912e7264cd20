//! The lint on small in-memory crates: cycles found where there are some, and not where the
//! only links are containment, test code, comments or strings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::graph::{cycles, module_of};
use super::source::{PathUse, blank_comments_and_literals, scan};
use super::{CrateReport, MAX_LINES, check_crate, render};

fn tree(files: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
        .collect()
}

/// Each cycle as its module names joined by ` ↔ `.
fn cycle_names(files: &[(&str, &str)]) -> Vec<String> {
    cycles(&tree(files))
        .iter()
        .map(|c| {
            c.modules
                .iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect()
}

#[test]
fn two_siblings_using_each_other_are_a_cycle_with_both_sites() {
    let files = tree(&[
        ("lib.rs", "pub mod flow;\npub mod stream;\n"),
        ("flow.rs", "use crate::stream::ErrorCode;\n"),
        ("stream.rs", "//! Stream.\n\nuse crate::flow::Rejection;\n"),
    ]);
    let found = cycles(&files);
    assert_eq!(found.len(), 1);
    let sites: Vec<(String, usize)> = found[0]
        .sites
        .iter()
        .map(|s| (s.file.display().to_string(), s.line))
        .collect();
    assert_eq!(
        sites,
        [("flow.rs".to_owned(), 1), ("stream.rs".to_owned(), 3)]
    );
}

#[test]
fn a_one_way_dependency_is_no_cycle() {
    assert!(
        cycle_names(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::Thing;\n"),
            ("b.rs", "pub struct Thing;\n"),
        ])
        .is_empty()
    );
}

#[test]
fn a_three_module_loop_through_submodules_is_lifted_to_the_siblings() {
    // engine/mod.rs → metrics, metrics/vllm.rs → engine, lora.rs → engine::units.
    let names = cycle_names(&[
        (
            "lib.rs",
            "pub mod engine;\npub mod lora;\npub mod metrics;\n",
        ),
        (
            "engine/mod.rs",
            "use crate::metrics::EngineMetrics;\nmod units;\n",
        ),
        ("engine/units.rs", "pub struct Micros;\n"),
        ("lora.rs", "use crate::engine::units::Micros;\n"),
        ("metrics/mod.rs", "mod vllm;\n"),
        (
            "metrics/vllm.rs",
            "use crate::{engine::Engine, lora::Lora};\n",
        ),
    ]);
    assert_eq!(names, ["engine ↔ lora ↔ metrics"]);
}

#[test]
fn parents_and_children_using_each_other_are_containment_not_cycles() {
    assert!(
        cycle_names(&[
            ("lib.rs", "pub mod plan;\n"),
            ("plan.rs", "mod intent;\nuse crate::plan::intent::apply;\n"),
            (
                "plan/intent.rs",
                "use super::Planner;\nuse crate::plan::Planner as P;\n"
            ),
        ])
        .is_empty()
    );
}

#[test]
fn super_paths_resolve_relative_to_the_file_s_module() {
    let names = cycle_names(&[
        ("lib.rs", "mod plan;\n"),
        ("plan.rs", "mod intent;\nmod progress;\n"),
        ("plan/intent.rs", "fn f() { super::progress::adopt(); }\n"),
        (
            "plan/progress.rs",
            "use super::{Planner, intent};\nfn g() { intent::advance(); }\n",
        ),
    ]);
    assert_eq!(names, ["plan::intent ↔ plan::progress"]);
}

#[test]
fn test_code_comments_and_strings_make_no_edges() {
    let names = cycle_names(&[
        ("lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod fixtures;\n"),
        ("a.rs", "use crate::b::B;\n"),
        (
            "b.rs",
            "//! See [`crate::a`].\n\
             const S: &str = \"crate::a::A\";\n\
             const R: &str = r#\"crate::a\"#;\n\
             #[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n\
             #[cfg(test)]\nmod more;\n",
        ),
        ("b/more.rs", "use crate::a::A;\n"),
        ("b/tests.rs", "use crate::a::A;\n"),
        ("tests/x.rs", "use crate::a::A;\n"),
        ("fixtures.rs", "use crate::a::A;\nuse crate::b::B;\n"),
    ]);
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn binaries_beside_a_library_are_other_crates() {
    assert_eq!(module_of("main.rs".as_ref(), true), None);
    assert_eq!(module_of("main.rs".as_ref(), false), Some(vec![]));
    assert_eq!(module_of("bin/tool.rs".as_ref(), true), None);
    assert_eq!(
        module_of("engine/mod.rs".as_ref(), true),
        Some(vec!["engine".to_owned()])
    );
    assert_eq!(
        module_of("a/b.rs".as_ref(), true),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
}

#[test]
fn grouped_imports_expand_to_one_path_each_with_their_lines() {
    let scanned =
        scan("use crate::{\n    a::X,\n    b::{c::Y, self},\n};\nfn f() -> super::Z {}\n");
    let paths: Vec<(usize, String)> = scanned
        .uses
        .iter()
        .map(|PathUse { line, segments }| (*line, segments.join("::")))
        .collect();
    assert_eq!(
        paths,
        [
            (1, "crate::a::X".to_owned()),
            (1, "crate::b::c::Y".to_owned()),
            (1, "crate::b::self".to_owned()),
            (5, "super::Z".to_owned()),
        ]
    );
}

#[test]
fn lifetimes_survive_and_char_literals_are_blanked() {
    let text = "fn f<'a>(x: &'a str) -> char { '\"' }\n";
    let blanked = blank_comments_and_literals(text);
    assert!(blanked.contains("<'a>"), "{blanked}");
    assert!(!blanked.contains('"'), "{blanked}");
    assert_eq!(blanked.len(), text.len());
}

#[test]
fn long_non_test_files_are_reported_and_test_files_are_not() {
    let long = "x\n".repeat(MAX_LINES + 1);
    let files = tree(&[
        ("lib.rs", "mod big;\n"),
        ("big.rs", &long),
        ("big/tests.rs", &long),
        ("small.rs", "x\n"),
    ]);
    let report = check_crate(PathBuf::from("demo"), &files);
    assert_eq!(
        report.long_files,
        [(PathBuf::from("big.rs"), MAX_LINES + 1)]
    );
    let text = render(&[report, CrateReport::default()]);
    assert_eq!(
        text,
        format!("demo:\n  demo/src/big.rs: 501 lines (over {MAX_LINES}; split it by concept)\n")
    );
}
