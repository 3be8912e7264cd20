//! One crate's module graph and its cycles.
//!
//! Nodes are modules (one per file: `a.rs`, `a/mod.rs` and `a/b.rs` are `a`, `a` and `a::b`).
//! An edge is a `crate::`, `super::` or `self::` path in one module that names another. A
//! module using its own ancestor or descendant is containment, not layering, so such edges
//! are left out; every other edge is lifted to the two siblings under the modules' deepest
//! common ancestor (`a::x::y` using `a::z::w` is `a::x → a::z`), which is where a cycle
//! means two modules that cannot be understood one without the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::source::{PathUse, scan};

/// A module path from the crate root (`[]` is the root).
pub type ModulePath = Vec<String>;

/// Where an edge was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The file, relative to the crate's `src/`.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The lifted edge: the using module and the used one.
    pub from: ModulePath,
    /// See `from`.
    pub to: ModulePath,
}

/// Modules that use each other, directly or through others, with one site per edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The modules in the cycle, sorted.
    pub modules: Vec<ModulePath>,
    /// One site for each edge between them.
    pub sites: Vec<Site>,
}

/// Whether a file under `src/` is test code by its path alone (`tests.rs`, `tests/…`).
pub fn is_test_file(relative: &Path) -> bool {
    relative.components().any(|c| c.as_os_str() == "tests")
        || relative.file_stem().is_some_and(|stem| stem == "tests")
}

/// The module a file under `src/` holds, or `None` for files that are not part of the library
/// (or sole binary) crate: `src/bin/…`, and `main.rs` beside a `lib.rs`.
pub fn module_of(relative: &Path, has_lib: bool) -> Option<ModulePath> {
    let parts: Vec<String> = relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_string_lossy().into_owned(),
            _ => String::new(),
        })
        .collect();
    let (file, dirs) = parts.split_last()?;
    if dirs.first().is_some_and(|d| d == "bin") {
        return None;
    }
    let stem = file.strip_suffix(".rs")?;
    let mut module: ModulePath = dirs.to_vec();
    match (dirs.is_empty(), stem) {
        (true, "lib") => {}
        (true, "main") if has_lib => return None,
        (true, "main") => {}
        (_, "mod") => {}
        _ => module.push(stem.to_owned()),
    }
    Some(module)
}

/// The cycles among the modules of one crate, given its `src/` files (path relative to `src/`
/// and contents). Test files and `#[cfg(test)]` code are left out.
pub fn cycles(files: &BTreeMap<PathBuf, String>) -> Vec<Cycle> {
    let has_lib = files.contains_key(Path::new("lib.rs"));
    let mut scanned = Vec::new();
    let mut test_modules: BTreeSet<ModulePath> = BTreeSet::new();
    for (path, text) in files {
        if is_test_file(path) {
            continue;
        }
        let Some(module) = module_of(path, has_lib) else {
            continue;
        };
        let found = scan(text);
        for name in &found.test_modules {
            let mut test = module.clone();
            test.push(name.clone());
            test_modules.insert(test);
        }
        scanned.push((path, module, found.uses));
    }
    scanned.retain(|(_, module, _)| !test_modules.iter().any(|t| module.starts_with(t)));
    let known: BTreeSet<ModulePath> = scanned.iter().map(|(_, m, _)| m.clone()).collect();

    let mut edges: BTreeMap<(ModulePath, ModulePath), Site> = BTreeMap::new();
    for (path, module, uses) in &scanned {
        for path_use in uses {
            let Some(target) = resolve(module, path_use, &known) else {
                continue;
            };
            let Some((from, to)) = lift(module, &target) else {
                continue;
            };
            edges.entry((from.clone(), to.clone())).or_insert(Site {
                file: (*path).clone(),
                line: path_use.line,
                from,
                to,
            });
        }
    }
    strongly_connected(&edges)
}

/// The known module `path_use` (written in `module`) names: the longest known prefix.
fn resolve(
    module: &ModulePath,
    path_use: &PathUse,
    known: &BTreeSet<ModulePath>,
) -> Option<ModulePath> {
    let mut segments = path_use.segments.iter().peekable();
    let mut base: ModulePath = match segments.next()?.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => module.get(..module.len().checked_sub(1)?)?.to_vec(),
        _ => return None,
    };
    while segments.peek().is_some_and(|s| *s == "super") {
        segments.next();
        base.pop();
    }
    let mut resolved = base.clone();
    for segment in segments {
        if segment == "self" {
            continue;
        }
        base.push(segment.clone());
        if known.contains(&base) {
            resolved = base.clone();
        } else {
            break;
        }
    }
    Some(resolved)
}

/// The edge `from → to` lifted to siblings, or `None` when one contains the other.
fn lift(from: &ModulePath, to: &ModulePath) -> Option<(ModulePath, ModulePath)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

/// Tarjan's strongly connected components of more than one module, each with its sites.
fn strongly_connected(edges: &BTreeMap<(ModulePath, ModulePath), Site>) -> Vec<Cycle> {
    let nodes: Vec<&ModulePath> = edges
        .keys()
        .flat_map(|(a, b)| [a, b])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index_of = |m: &ModulePath| nodes.iter().position(|n| *n == m);
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (from, to) in edges.keys() {
        if let (Some(a), Some(b)) = (index_of(from), index_of(to)) {
            next[a].push(b);
        }
    }
    let components = Tarjan::run(&next);
    components
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let members: BTreeSet<&ModulePath> = component.iter().map(|&i| nodes[i]).collect();
            let sites = edges
                .iter()
                .filter(|((a, b), _)| members.contains(a) && members.contains(b))
                .map(|(_, site)| site.clone())
                .collect();
            Cycle {
                modules: members.into_iter().cloned().collect(),
                sites,
            }
        })
        .collect()
}

/// Tarjan's algorithm, iterative so deep graphs cannot overflow the stack.
struct Tarjan<'a> {
    next: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    components: Vec<Vec<usize>>,
}

impl<'a> Tarjan<'a> {
    fn run(next: &'a [Vec<usize>]) -> Vec<Vec<usize>> {
        let n = next.len();
        let mut state = Tarjan {
            next,
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            counter: 0,
            components: Vec::new(),
        };
        for root in 0..n {
            if state.index[root].is_none() {
                state.visit(root);
            }
        }
        state.components
    }

    fn enter(&mut self, node: usize) {
        self.index[node] = Some(self.counter);
        self.low[node] = self.counter;
        self.counter += 1;
        self.stack.push(node);
        self.on_stack[node] = true;
    }

    fn visit(&mut self, root: usize) {
        // Each frame: a node and how many of its successors were looked at.
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        self.enter(root);
        while let Some(&mut (node, ref mut seen)) = frames.last_mut() {
            if let Some(&succ) = self.next[node].get(*seen) {
                *seen += 1;
                match self.index[succ] {
                    None => {
                        self.enter(succ);
                        frames.push((succ, 0));
                    }
                    Some(succ_index) if self.on_stack[succ] => {
                        self.low[node] = self.low[node].min(succ_index);
                    }
                    Some(_) => {}
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                self.low[parent] = self.low[parent].min(self.low[node]);
            }
            if Some(self.low[node]) == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
}
