//! The shape of `bridge/src`: data flows one way (ingress → hub → egress → socket), so
//! no file may reach, through the paths it uses, a file that reaches it back. This test
//! reads every source file, resolves each `crate::…`, `super::…`, `self::…` and
//! child-module path (outside comments, strings and the `#[cfg(test)]` tail) to the
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

/// The code of a file without comments, string and char literals, and without
/// everything from the first `#[cfg(test)]` on (unit tests sit at the bottom).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path in `code` that starts with `crate`, `super`, `self` or one of
/// `children`, with `use` groups (`a::{b, c::d}`) expanded.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let bytes: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if !starts_word || !(bytes[i].is_alphabetic() || bytes[i] == '_') {
            i += 1;
            continue;
        }
        let (path, end) = path_at(&bytes, i);
        let first = path.first().map(|p| p[0].clone()).unwrap_or_default();
        if path.iter().any(|p| p.len() > 1)
            && (matches!(first.as_str(), "crate" | "super" | "self") || children.contains(&first))
        {
            found.extend(path);
        }
        i = end.max(i + 1);
    }
    found
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

/// The file a path names, from the module `from`: its longest prefix that is a module.
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
            .filter_map(|path| resolve(path, module, &modules))
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
