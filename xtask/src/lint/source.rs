//! Reading one Rust source file for the module graph: comments and literals blanked out (so a
//! doc link or a string that mentions `crate::x` is no dependency), `#[cfg(test)]` items
//! removed, and every `crate::` / `super::` / `self::` path left over collected with its line.
//!
//! This is a scanner, not a parser: it knows strings, raw strings, char literals, lifetimes,
//! comments and brace depth, which is all the module graph needs. Line structure is kept, so
//! the line numbers it reports are the file's.

/// A module path found in a file, relative to where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathUse {
    /// 1-based line of the path's first segment.
    pub line: usize,
    /// `crate`, `super` (possibly repeated) or `self`, then the named segments. Only the
    /// segments that could name modules are kept; the resolver takes the longest known prefix.
    pub segments: Vec<String>,
}

/// What the scanner learned from one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Every path that leaves the file's own module.
    pub uses: Vec<PathUse>,
    /// `#[cfg(test)] mod name;` declarations: the files behind them are test code.
    pub test_modules: Vec<String>,
}

/// Scans `text` (the contents of one `.rs` file).
pub fn scan(text: &str) -> Scanned {
    let code = blank_comments_and_literals(text);
    let (code, test_modules) = remove_test_items(&code);
    Scanned {
        uses: collect_paths(&code),
        test_modules,
    }
}

/// `text` with every comment and the inside of every string and char literal replaced by
/// spaces (newlines kept).
pub fn blank_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..." or r#"..."#: no escapes, ends at a quote followed by the same hashes.
            let open = 1 + hashes + 1 + usize::from(c == 'b');
            out.extend(std::iter::repeat_n(' ', open));
            i += open;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    out.extend(std::iter::repeat_n(' ', hashes + 1));
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&inside) = chars.get(i) {
                    out.push(blank(inside));
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The number of `#` of a raw string literal starting at `i` (`r"`, `r#"`, `br"`, ...).
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let preceded_by_ident = i > 0 && is_ident_char(chars[i - 1]);
    if preceded_by_ident {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// Whether the `'` at `i` opens a char literal rather than naming a lifetime or label.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `code` (already blanked) without its `#[cfg(test)]` items, and the names of the test
/// modules declared as files (`#[cfg(test)] mod name;`).
fn remove_test_items(code: &str) -> (String, Vec<String>) {
    const MARKER: &str = "#[cfg(test)]";
    let mut out: Vec<char> = code.chars().collect();
    let mut test_modules = Vec::new();
    let mut search_from = 0;
    while let Some(found) = code[search_from..].find(MARKER) {
        let start = search_from + found;
        let item_start = start + MARKER.len();
        // Byte offsets equal char offsets here only for ASCII; map through char indices.
        let start_char = code[..start].chars().count();
        let item_char = start_char + MARKER.chars().count();
        let end_char = item_end(&out, item_char);
        let item: String = out[item_char..end_char].iter().collect();
        if let Some(name) = file_module_name(&item) {
            test_modules.push(name);
        }
        for c in &mut out[start_char..end_char] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        search_from = item_start;
    }
    (out.into_iter().collect(), test_modules)
}

/// Where the item starting at `from` ends: after its `;` or its closing brace at depth 0, or
/// before a `,` or `}` that closes the enclosing list (a `#[cfg(test)]` field).
fn item_end(chars: &[char], from: usize) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 && chars[i] == '}' {
                    return i + 1;
                }
            }
            ';' if depth == 0 => return i + 1,
            ',' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// `name` when `item` is `mod name;` (with any attributes or visibility before it).
fn file_module_name(item: &str) -> Option<String> {
    let trimmed = item.trim().strip_suffix(';')?;
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let position = words.iter().position(|w| *w == "mod")?;
    let name = words.get(position + 1)?;
    (position + 2 == words.len()).then(|| (*name).to_owned())
}

/// Every `crate::…`, `super::…` and `self::…` path in `code`, grouped imports expanded
/// (`crate::{a::X, b}` gives `crate::a::X` and `crate::b`).
fn collect_paths(code: &str) -> Vec<PathUse> {
    let chars: Vec<char> = code.chars().collect();
    let mut uses = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        let at_word_start = i == 0 || !(is_ident_char(chars[i - 1]) || chars[i - 1] == '$');
        // `::crate` never occurs; a preceding `::` means this is a segment of a longer path.
        let after_path_sep = i >= 2 && chars[i - 1] == ':' && chars[i - 2] == ':';
        let anchor = ["crate", "super", "self"]
            .into_iter()
            .find(|anchor| starts_with_word(&chars, i, anchor));
        match anchor {
            Some(anchor)
                if at_word_start
                    && !after_path_sep
                    && followed_by_sep(&chars, i + anchor.len()) =>
            {
                let end = read_path(&chars, i, &mut Vec::new(), line, &mut uses);
                // A grouped import may span lines.
                line += chars[i..end].iter().filter(|&&c| c == '\n').count();
                i = end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    uses
}

fn starts_with_word(chars: &[char], i: usize, word: &str) -> bool {
    let len = word.chars().count();
    chars.len() >= i + len
        && chars[i..i + len].iter().copied().eq(word.chars())
        && !chars.get(i + len).is_some_and(|&c| is_ident_char(c))
}

fn followed_by_sep(chars: &[char], i: usize) -> bool {
    let j = skip_space(chars, i);
    chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':')
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// Reads the path starting at `i` (segments joined by `::`, possibly ending in a `{…}`
/// group), pushing one [`PathUse`] per leaf onto `uses`. Returns the index just past it.
fn read_path(
    chars: &[char],
    mut i: usize,
    prefix: &mut Vec<String>,
    line: usize,
    uses: &mut Vec<PathUse>,
) -> usize {
    let depth_at_entry = prefix.len();
    loop {
        i = skip_space(chars, i);
        if chars.get(i) == Some(&'{') {
            i = read_group(chars, i + 1, prefix, line, uses);
            prefix.truncate(depth_at_entry);
            return i;
        }
        let start = i;
        while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
            i += 1;
        }
        if start == i {
            // `*` or nothing: the path ends at what was read.
            break;
        }
        prefix.push(chars[start..i].iter().collect());
        let after = skip_space(chars, i);
        if chars.get(after) == Some(&':') && chars.get(after + 1) == Some(&':') {
            i = after + 2;
        } else {
            break;
        }
    }
    if prefix.len() > depth_at_entry || depth_at_entry > 0 {
        uses.push(PathUse {
            line,
            segments: prefix.clone(),
        });
    }
    prefix.truncate(depth_at_entry);
    i
}

/// Reads the items of a `{…}` group whose `{` is just before `i`; returns the index past `}`.
fn read_group(
    chars: &[char],
    mut i: usize,
    prefix: &mut Vec<String>,
    line: usize,
    uses: &mut Vec<PathUse>,
) -> usize {
    loop {
        i = skip_space(chars, i);
        match chars.get(i) {
            None => return i,
            Some('}') => return i + 1,
            Some(',') => i += 1,
            Some(_) => {
                let before = i;
                let depth = prefix.len();
                i = read_path(chars, i, prefix, line, uses);
                prefix.truncate(depth);
                // Skip `as name`, `*` and anything else up to the next separator.
                while let Some(&c) = chars.get(i) {
                    if c == ',' || c == '}' {
                        break;
                    }
                    i += 1;
                }
                if i == before {
                    i += 1;
                }
            }
        }
    }
}
