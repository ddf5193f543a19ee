//! The documentation's links: every relative link in every Markdown file git tracks
//! points at a file or directory the repository holds (tracked, not only present), and
//! every `#anchor` at a heading of the Markdown file it names. No file, Markdown or
//! source, points at contract notes kept outside the repository, which its users
//! never see: the project documents its contract in docs/ in its own words.
//!
//! Pure: reads files and asks `git ls-files` what is tracked (outside a git work tree
//! every file found is checked). Links with a scheme (`https://…`) are public URLs and
//! are not fetched.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Directories never walked: build output, installed packages, version control, and
/// the fuzzers' generated inputs.
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", ".git"];
const SKIPPED_PATHS: &[&str] = &["fuzz/corpus", "fuzz/artifacts", "fuzz/coverage"];

/// Text that points at notes outside the repository. Built with `concat!` so that
/// this file does not match itself.
const FORBIDDEN: &[&str] = &[
    concat!("shared", "/spec"),
    concat!("shared", "/docs"),
    concat!("protocol", "-notes.md"),
];

/// Extensions of the text files searched for [`FORBIDDEN`] references (files without
/// an extension are searched when they start with `#!`).
const TEXT_EXTENSIONS: &[&str] = &[
    "md", "rs", "toml", "sh", "py", "php", "js", "mjs", "html", "service", "socket", "sysusers",
    "yml", "yaml", "txt",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bridge crate sits in the workspace root")
        .to_path_buf()
}

#[test]
fn every_relative_markdown_link_resolves() {
    let root = repo_root();
    let problems = check_tree(&root);
    assert!(
        problems.is_empty(),
        "{} broken documentation link(s) or outside reference(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checker itself finds what it must: a test that cannot fail proves nothing.
#[test]
fn the_checker_finds_broken_links_anchors_and_outside_references() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# Title\n\n## Second `part` (v2)\n\n\
         [ok](b.md) [ok anchor](b.md#the-target) [self](#second-part-v2)\n\
         [dir](../docs) [ok root](/docs/b.md) <https://example.com/x>\n\
         [web](https://example.com/missing.md)\n\
         `[in code](missing-in-code.md)`\n\
         ```\n[in a fence](missing-in-fence.md)\n```\n\
         [broken](missing.md)\n\
         [bad anchor](b.md#no-such-heading)\n\
         [bad self anchor](#nope)\n\
         [escapes](../../outside.md)\n\
         [ref]: missing-ref.md\n",
    )
    .unwrap();
    std::fs::write(root.join("docs/b.md"), "# The target\n").unwrap();
    let forbidden = FORBIDDEN[0];
    std::fs::write(
        root.join("docs/c.rs"),
        format!(
            "// see {forbidden}/clients.md\n// and {}\n",
            concat!("(spec", "/x.md)")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("target/ignored.md"), "[broken](nowhere.md)\n").unwrap();

    let problems = check_tree(root);
    let expect = [
        "docs/a.md:12: missing.md",
        "docs/a.md:13: b.md#no-such-heading",
        "docs/a.md:14: #nope",
        "docs/a.md:15: ../../outside.md",
        "docs/a.md:16: missing-ref.md",
        "docs/c.rs:1:",
        "docs/c.rs:2:",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "not reported: {expected}\nreported:\n{}",
            problems.join("\n")
        );
    }
    assert_eq!(problems.len(), expect.len(), "{}", problems.join("\n"));
}

#[test]
fn anchors_are_slugged_as_github_does() {
    let slugs = anchors("# Push-bridge\n## WAMP v2 subscriber (`wamp.2.json`)\n## `[server]`\n## Dup\n## Dup\n```\n# not a heading\n```\n## [Linked](x.md) heading ##\n");
    for slug in [
        "push-bridge",
        "wamp-v2-subscriber-wamp2json",
        "server",
        "dup",
        "dup-1",
        "linked-heading",
    ] {
        assert!(slugs.contains_key(slug), "{slug} missing from {slugs:?}");
    }
    assert!(!slugs.contains_key("not-a-heading"));
}

/// Every problem under `root`, as `path:line: what`.
fn check_tree(root: &Path) -> Vec<String> {
    let (files, known) = match tracked_files(root) {
        Some(files) => {
            let mut known: HashSet<PathBuf> = HashSet::new();
            for file in &files {
                known.extend(
                    file.ancestors()
                        .take_while(|a| a.starts_with(root))
                        .map(Path::to_path_buf),
                );
            }
            (files, Some(known))
        }
        None => {
            let mut files = Vec::new();
            walk(root, root, &mut files);
            (files, None)
        }
    };
    let mut anchor_cache: HashMap<PathBuf, HashMap<String, ()>> = HashMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        if is_searched_text(file, &text) {
            for (number, line) in text.lines().enumerate() {
                if let Some(what) = outside_reference(line) {
                    problems.push(format!(
                        "{shown}:{}: points outside the repository ({what}): {}",
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
        if file.extension().is_some_and(|e| e == "md") {
            for (number, target) in links(&text) {
                let found = |path: &Path| match &known {
                    Some(known) => known.contains(path),
                    None => path.exists(),
                };
                if let Err(why) = resolve(root, file, &target, &text, &found, &mut anchor_cache) {
                    problems.push(format!("{shown}:{number}: {target}: {why}"));
                }
            }
        }
    }
    problems
}

/// The files git tracks under `root` (minus the skipped paths), sorted; `None` when
/// `root` is not in a git work tree (an unpacked tarball, the self-check's tree).
fn tracked_files(root: &Path) -> Option<Vec<PathBuf>> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let listing = String::from_utf8(output.stdout).ok()?;
    let mut files: Vec<PathBuf> = listing
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(Path::new)
        .filter(|f| !is_skipped(f))
        .map(|f| root.join(f))
        .collect();
    files.sort();
    Some(files)
}

/// Whether a path (relative to the root) is in a skipped directory.
fn is_skipped(relative: &Path) -> bool {
    relative.ancestors().any(|dir| {
        SKIPPED_PATHS.iter().any(|p| dir == Path::new(p))
            || dir
                .file_name()
                .is_some_and(|name| SKIPPED_DIRS.iter().any(|d| name == *d))
    })
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let skipped = is_skipped(relative);
        match entry.file_type() {
            Ok(t) if t.is_dir() && !skipped => walk(root, &path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn is_searched_text(file: &Path, text: &str) -> bool {
    match file.extension().and_then(|e| e.to_str()) {
        Some(ext) => TEXT_EXTENSIONS.contains(&ext),
        None => text.starts_with("#!"),
    }
}

/// What in `line` points at notes outside the repository, if anything: one of
/// [`FORBIDDEN`], or a path whose first directory is `spec` (not part of a longer path
/// or URL).
fn outside_reference(line: &str) -> Option<&'static str> {
    if let Some(found) = FORBIDDEN.iter().find(|f| line.contains(**f)) {
        return Some(found);
    }
    let spec = concat!("spec", "/");
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(at) = line[from..].find(spec) {
        let at = from + at;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let part_of_a_path =
            before.is_some_and(|b| b.is_ascii_alphanumeric() || b"/.-_".contains(&b));
        if !part_of_a_path {
            return Some(spec);
        }
        from = at + spec.len();
    }
    None
}

/// The link targets of a Markdown text with their line numbers: inline links and
/// images `[text](target "title")` and reference definitions `[id]: target`, outside
/// fenced code blocks and code spans. Autolinks (`<https://…>`) are URLs.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') && line.len() - trimmed.len() <= 3 {
            if let Some((label, rest)) = trimmed[1..].split_once("]:") {
                if !label.is_empty() && !label.contains('[') {
                    if let Some(target) = rest.split_whitespace().next() {
                        found.push((number, strip_angles(target).to_string()));
                        continue;
                    }
                }
            }
        }
        let prose = without_code_spans(line);
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let mut depth = 0usize;
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = i;
                        break;
                    }
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            let inside = after[..end].trim();
            let target = if let Some(angled) = inside.strip_prefix('<') {
                angled.split('>').next().unwrap_or_default()
            } else {
                inside.split_whitespace().next().unwrap_or_default()
            };
            if !target.is_empty() {
                found.push((number, target.to_string()));
            }
            rest = &after[end.min(after.len())..];
        }
    }
    found
}

fn strip_angles(target: &str) -> &str {
    target
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(target)
}

/// The lines outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => lines.push((index + 1, line)),
            _ => {}
        }
    }
    lines
}

/// `line` with the content of its code spans (`` `…` ``) removed.
fn without_code_spans(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// Checks one link target of `file`; `found` says whether a path is part of the
/// repository.
fn resolve(
    root: &Path,
    file: &Path,
    target: &str,
    text: &str,
    found: &dyn Fn(&Path) -> bool,
    cache: &mut HashMap<PathBuf, HashMap<String, ()>>,
) -> Result<(), String> {
    if target.starts_with("file:") {
        return Err("a file: URL points outside the repository".into());
    }
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let path = path.replace("%20", " ");
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        root.join(from_root)
    } else {
        file.parent().unwrap_or(root).join(&path)
    };
    let resolved = normalize(&resolved).ok_or("leaves the file system root")?;
    if !resolved.starts_with(root) {
        return Err("points outside the repository".into());
    }
    if !found(&resolved) {
        return Err("no such file or directory in the repository (or not tracked by git)".into());
    }
    let Some(anchor) = anchor.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    if resolved.extension().is_none_or(|e| e != "md") {
        return Ok(());
    }
    let slugs = match cache.get(&resolved) {
        Some(slugs) => slugs,
        None => {
            let target_text = if resolved == file {
                text.to_string()
            } else {
                std::fs::read_to_string(&resolved).map_err(|e| e.to_string())?
            };
            cache
                .entry(resolved.clone())
                .or_insert(anchors(&target_text))
        }
    };
    if slugs.contains_key(&anchor.to_lowercase()) {
        Ok(())
    } else {
        Err(format!(
            "no heading #{anchor} in {}",
            resolved.strip_prefix(root).unwrap_or(&resolved).display()
        ))
    }
}

/// `path` with `.` and `..` resolved lexically; `None` if `..` climbs above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// The anchors GitHub gives the headings of a Markdown text: the heading's text
/// (code spans' content kept, link targets dropped) in lowercase, without punctuation
/// other than `-` and `_`, each space a `-`; a repeated slug gets `-1`, `-2`, ….
fn anchors(text: &str) -> HashMap<String, ()> {
    let mut slugs = HashMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let heading = line[hashes..].trim().trim_end_matches('#').trim();
        let slug = slug(&drop_link_targets(heading));
        let count = seen.entry(slug.clone()).or_insert(0);
        let unique = if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        };
        *count += 1;
        slugs.insert(unique, ());
    }
    slugs
}

/// `[text](target)` → `text`.
fn drop_link_targets(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(at) = rest.find("](") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        rest = after.split_once(')').map_or("", |(_, tail)| tail);
    }
    out.push_str(rest);
    out
}

fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}
