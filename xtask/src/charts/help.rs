//! The flags a binary accepts, read from its clap `--help` output.
//!
//! A chart may only render flags its binary knows, with the right arity: clap rejects
//! `--switch=true` for a plain switch and a value-taking flag without a value, and the pod
//! would crash-loop on its first start. Reading `--help` (not our own list) keeps the check
//! honest when a binary renames or drops a flag.

use std::collections::BTreeMap;

/// How a flag takes its value, from the `--help` usage line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--flag`: no value (`--flag=x` is an error).
    Switch,
    /// `--flag <VALUE>`: a value is required, as `--flag=x` or `--flag x`.
    Required,
    /// `--flag[=<VALUE>]`: the value is optional and must be attached with `=`.
    Optional,
}

/// The long flags of one binary (without the leading `--`), with their arity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub by_name: BTreeMap<String, Arity>,
    /// The subcommand these flags belong to (`serve`), which must be the first arg.
    pub subcommand: Option<String>,
}

impl Flags {
    /// Parses clap's long help: every option line starts with whitespace, then `-x, --name`
    /// or `--name`, then the value placeholder if any.
    pub fn from_help(help: &str) -> Self {
        let mut by_name = BTreeMap::new();
        for line in help.lines() {
            let trimmed = line.trim_start();
            // Option lines are indented; description lines that mention a flag in prose do
            // not start with a dash.
            if trimmed.len() == line.len() || !trimmed.starts_with('-') {
                continue;
            }
            let usage = trimmed.strip_prefix_short().unwrap_or(trimmed);
            let Some(rest) = usage.strip_prefix("--") else {
                continue;
            };
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(name_len);
            if name.is_empty() {
                continue;
            }
            let arity = if after.starts_with("[=") {
                Arity::Optional
            } else if after.trim_start().starts_with('<') {
                Arity::Required
            } else {
                Arity::Switch
            };
            by_name.insert(name.to_owned(), arity);
        }
        Self {
            by_name,
            subcommand: None,
        }
    }

    /// These flags, as those of `subcommand`.
    pub fn for_subcommand(mut self, subcommand: Option<&str>) -> Self {
        self.subcommand = subcommand.map(str::to_owned);
        self
    }

    /// Whether `name` (without dashes) is a flag of this binary.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Checks a container's `args` against these flags and returns one message per problem.
    pub fn check_args(&self, args: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut index = 0;
        if let Some(subcommand) = &self.subcommand {
            if args.first() == Some(subcommand) {
                index = 1;
            } else {
                problems.push(format!(
                    "the first arg must be the subcommand `{subcommand}`, found {:?}",
                    args.first()
                ));
            }
        }
        while index < args.len() {
            let arg = &args[index];
            index += 1;
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                problems.push(format!(
                    "`{arg}` is a positional argument; the binary takes flags only"
                ));
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (flag, None),
            };
            let Some(arity) = self.by_name.get(name) else {
                problems.push(format!(
                    "`--{name}` is not a flag of the binary (see its --help)"
                ));
                continue;
            };
            match (arity, value) {
                (Arity::Switch, Some(_)) => problems.push(format!(
                    "`{arg}`: `--{name}` is a switch and takes no value; render `--{name}` alone"
                )),
                (Arity::Required, None) => {
                    // `--flag value` as two items is valid clap, if the value is there.
                    match args.get(index) {
                        Some(next) if !next.starts_with('-') => index += 1,
                        _ => problems.push(format!("`--{name}` needs a value")),
                    }
                }
                (Arity::Required, Some("")) => {
                    problems.push(format!("`{arg}`: `--{name}` has an empty value"));
                }
                _ => {}
            }
        }
        problems
    }

    /// The value a container's `args` give `name`, if any (`--name=value` or `--name value`);
    /// `Some("")` when `--name` stands alone.
    pub fn value_of<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
        let long = format!("--{name}");
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(value) = arg.strip_prefix(&long) {
                if let Some(value) = value.strip_prefix('=') {
                    return Some(value);
                }
                if value.is_empty() {
                    // `--name value`; a following flag means `--name` stood alone.
                    return match iter.next() {
                        Some(next) if !next.starts_with('-') => Some(next.as_str()),
                        _ => Some(""),
                    };
                }
            }
        }
        None
    }
}

/// Whether a boolean flag is on in `args`: `--name` alone or `--name=true`.
pub fn is_set(args: &[String], name: &str) -> bool {
    matches!(Flags::value_of(args, name), Some("" | "true"))
}

/// `-v, --v <X>` → `--v <X>`.
trait StripShort {
    fn strip_prefix_short(&self) -> Option<&str>;
}

impl StripShort for str {
    fn strip_prefix_short(&self) -> Option<&str> {
        let rest = self.strip_prefix('-')?;
        let mut chars = rest.chars();
        let short = chars.next()?;
        if short == '-' {
            return None;
        }
        chars.as_str().strip_prefix(", ")
    }
}
