//! The shape of `bridge/src`: data flows one way (ingress → hub → egress → socket), so
//! no file may reach, through the paths it uses, a file that reaches it back. This test
//! reads every source file, resolves each `crate::…`, `super::…`, `self::…` and
//! child-module path (outside comments, string and char literals and `#[cfg(test)]`
//! items; `self` and `super` inside an inline `mod name { … }` from that module) to the
//! file that defines it, and fails naming any loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files by module path (`["hub", "index"]`), relative file name as value.
type Modules = BTreeMap<Vec<String>, String>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, as module paths (`main.rs` is its own crate: left out).
fn modules(root: &Path) -> Modules {
    let mut found = Modules::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if relative == "main.rs" {
                continue;
            }
            let mut segments: Vec<String> = relative
                .trim_end_matches(".rs")
                .split('/')
                .map(String::from)
                .collect();
            if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                segments.pop();
            }
            found.insert(segments, relative);
        }
    }
    found
}

/// The code of a file without comments, string and char literals, and without the
/// items marked `#[cfg(test)]` (the unit tests, wherever they are declared).
fn code(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match chars[i] {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
                continue;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
            }
            // A char literal (`'"'`, `'\''`); a lifetime or label (`'a`) is kept.
            '\'' if next == Some('\\') => {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                out.push_str("' '");
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => {
                i += 2;
                out.push_str("' '");
            }
            c => out.push(c),
        }
        i += 1;
    }
    without_test_items(&out)
}

/// `code` without each item marked `#[cfg(test)]`: a `mod tests;` declaration, or an
/// item up to its `;` or through its `{ … }` body.
fn without_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        let mut depth = 0i32;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                '{' if depth == 0 => {
                    end = matching_brace(rest, i);
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Just past the `}` that closes the `{` at byte `open` (the end of `code` if none).
fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Every path in `code` that starts with `crate`, `super`, `self` or one of
/// `children`, with `use` groups (`a::{b, c::d}`) expanded, each with the inline
/// modules (`mod name { … }`) it sits in, outermost first.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<(Vec<String>, Vec<String>)> {
    let bytes: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    // The inline modules around `i`, each with the brace depth inside it.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|(_, inside)| *inside > depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        let starts_word = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if !starts_word || !(bytes[i].is_alphabetic() || bytes[i] == '_') {
            i += 1;
            continue;
        }
        let (path, end) = path_at(&bytes, i);
        let first = path.first().map(|p| p[0].clone()).unwrap_or_default();
        if first == "mod" {
            if let Some(name) = inline_module(&bytes, end) {
                inline.push((name, depth + 1));
            }
        }
        if path.iter().any(|p| p.len() > 1)
            && (matches!(first.as_str(), "crate" | "super" | "self") || children.contains(&first))
        {
            let modules: Vec<String> = inline.iter().map(|(name, _)| name.clone()).collect();
            found.extend(path.into_iter().map(|p| (modules.clone(), p)));
        }
        i = end.max(i + 1);
    }
    found
}

/// After the word `mod` at `at`: the module's name when its body follows (`name {`).
fn inline_module(chars: &[char], at: usize) -> Option<String> {
    let skip_space = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    let start = skip_space(at);
    let mut end = start;
    while chars
        .get(end)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        end += 1;
    }
    (end > start && chars.get(skip_space(end)) == Some(&'{'))
        .then(|| chars[start..end].iter().collect())
}

/// The path (or use tree) starting at `at`: every full path it names, and where it ends.
fn path_at(chars: &[char], at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = at;
    loop {
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i == start {
            break;
        }
        prefix.push(chars[start..i].iter().collect::<String>());
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
            if chars.get(i) == Some(&'*') {
                // A glob (`use super::*`) names the module it is in.
                prefix.push("*".to_string());
                return (vec![prefix], i + 1);
            }
            if chars.get(i) == Some(&'{') {
                // A use group: each item is a path of its own below `prefix`.
                let mut all = Vec::new();
                i += 1;
                loop {
                    while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        i += 1;
                    }
                    match chars.get(i) {
                        None => return (all, i),
                        Some('}') => return (all, i + 1),
                        _ => {}
                    }
                    let (inner, end) = path_at(chars, i);
                    for tail in inner {
                        all.push([prefix.clone(), tail].concat());
                    }
                    if end == i {
                        i += 1;
                    } else {
                        i = end;
                    }
                    // Skip `as name`.
                    while chars.get(i).is_some_and(|c| *c != ',' && *c != '}') {
                        i += 1;
                    }
                }
            }
            continue;
        }
        break;
    }
    (vec![prefix], i)
}

/// The file a path names, from the module `from` (a file's module, plus the inline
/// modules the path sits in for `self` and `super`): its longest prefix that is a module.
fn resolve(path: &[String], from: &[String], modules: &Modules) -> Option<String> {
    let mut absolute: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("self") => {
            absolute = from.to_vec();
            rest = &path[1..];
        }
        Some("super") => {
            absolute = from.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                absolute.pop();
                rest = &rest[1..];
            }
        }
        _ => absolute = from.to_vec(),
    }
    absolute.extend(rest.iter().cloned());
    (0..=absolute.len())
        .rev()
        .find_map(|n| modules.get(&absolute[..n]))
        .cloned()
}

/// Files that use each other, one step: file → the files it names.
fn graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(root);
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let code = code(&text);
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .filter_map(|m| m.last().cloned())
            .collect();
        let targets: BTreeSet<String> = paths(&code, &children)
            .iter()
            .filter_map(|(inline, path)| {
                let from = match path[0].as_str() {
                    "self" | "super" => [module.clone(), inline.clone()].concat(),
                    // Child files and the crate root are named from the file's module.
                    _ => module.clone(),
                };
                resolve(path, &from, &modules)
            })
            .filter(|target| target != file)
            .collect();
        edges.insert(file.clone(), targets);
    }
    edges
}

/// Groups of files that reach each other (strongly connected, more than one file).
fn loops(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(file) = todo.pop() {
            for next in edges.get(&file).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|file| (file, reach(file))).collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for (file, reached) in &reaches {
        if !reached.contains(*file) || groups.iter().any(|g| g.contains(file)) {
            continue;
        }
        let group: Vec<String> = reached
            .iter()
            .filter(|other| reaches[other].contains(*file))
            .cloned()
            .collect();
        groups.push(group);
    }
    groups
}

#[test]
fn no_file_in_bridge_src_reaches_itself() {
    let edges = graph(&src_dir());
    assert!(
        edges.len() > 40,
        "read the source tree: {} files",
        edges.len()
    );
    assert!(
        edges["server/routes.rs"].contains("egress/websocket.rs"),
        "the resolver sees `use crate::…` paths: {:?}",
        edges["server/routes.rs"]
    );
    let loops = loops(&edges);
    assert!(
        loops.is_empty(),
        "files that import each other (through the paths listed):\n{}",
        loops
            .iter()
            .map(|group| format!("  {}", group.join(" ⇄ ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_loop_is_found() {
    let dir = std::env::temp_dir().join(format!("layout-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(
        dir.join("a/mod.rs"),
        "pub mod c;\nuse crate::b::{B, other::X};\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("a/c.rs"),
        "// use crate::b;\nuse super::super::b as _;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "fn f() { let s = \"crate::a\"; crate::a::c::g(); }\n",
    )
    .unwrap();
    let edges = graph(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(edges["a/mod.rs"], BTreeSet::from(["b.rs".to_string()]));
    assert_eq!(edges["a/c.rs"], BTreeSet::from(["b.rs".to_string()]));
    assert_eq!(edges["b.rs"], BTreeSet::from(["a/c.rs".to_string()]));
    assert_eq!(
        loops(&edges),
        vec![vec!["a/c.rs".to_string(), "b.rs".to_string()]]
    );
}

#[test]
fn inline_modules_char_literals_and_test_items_are_read_as_rust_reads_them() {
    let dir = std::env::temp_dir().join(format!("layout-test-inline-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    // A glob names its module; `super` inside `mod inner { … }` is `a`, this file,
    // not the crate root.
    std::fs::write(
        dir.join("a/mod.rs"),
        "pub mod c;\npub use c::*;\npub fn f() {}\npub mod inner {\n    use super::f;\n}\n\
         fn g() { super::b::h(); }\n",
    )
    .unwrap();
    // A test module declared on top hides nothing below it; a `'"'` opens no string.
    std::fs::write(
        dir.join("a/c.rs"),
        "#[cfg(test)]\nmod tests;\n#[cfg(test)]\nfn helper() { crate::b::h(); }\n\
         pub struct C<'a>(&'a str);\nfn q() -> char { '\"' }\nuse super::f;\nfn r() -> char { '\"' }\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.rs"), "pub fn h() {}\n").unwrap();
    let edges = graph(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        edges["a/mod.rs"],
        BTreeSet::from(["a/c.rs".to_string(), "b.rs".to_string()])
    );
    assert_eq!(edges["a/c.rs"], BTreeSet::from(["a/mod.rs".to_string()]));
    assert_eq!(edges["b.rs"], BTreeSet::new());
    assert_eq!(
        loops(&edges),
        vec![vec!["a/c.rs".to_string(), "a/mod.rs".to_string()]]
    );
}
