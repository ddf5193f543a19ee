//! Replays every committed fuzz input on stable, through the same entry points the fuzz
//! targets call (`push_bridge::fuzzing`, docs/fuzzing.md): the seed corpus
//! `fuzz/corpus/<target>/` and every crash ever found, `fuzz/regressions/<target>/`.
//! CI runs this; `scripts/fuzz` runs the fuzzer itself.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use push_bridge::fuzzing;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

/// Every fuzz target, by the name of its corpus directory and of `fuzz/fuzz_targets/<name>.rs`.
const TARGETS: &[(&str, Target)] = &[
    ("ingress_message", fuzzing::ingress_message),
    ("native_request", fuzzing::native_request),
    ("wamp1_frames", fuzzing::wamp1_frames),
    ("wamp2_frames", fuzzing::wamp2_frames),
    ("topic_relations", fuzzing::topic_relations),
    ("credentials", fuzzing::credentials),
    ("config", fuzzing::config),
    ("client_sessions", fuzzing::client_sessions),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The names in `dir` (files or directories), sorted; empty if `dir` does not exist.
fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Runs every file of `dir` through `target`; returns the files that panicked.
fn replay(dir: &Path, target: Target) -> (usize, Vec<String>) {
    let mut failed = Vec::new();
    let files = names(dir);
    for name in &files {
        let path = dir.join(name);
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if panic::catch_unwind(|| target(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    (files.len(), failed)
}

#[test]
fn every_target_has_a_seed_corpus_and_a_fuzz_target() {
    let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let corpus = fuzz_dir().join("corpus");
    assert_eq!(
        names(&corpus),
        {
            let mut sorted = known.clone();
            sorted.sort();
            sorted
        },
        "fuzz/corpus/ must hold exactly one directory per target"
    );
    for name in &known {
        let dir = corpus.join(name);
        assert!(
            !names(&dir).is_empty(),
            "{} is missing or empty",
            dir.display()
        );
        let source = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
        let text =
            fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("push_bridge::fuzzing::{name}(")),
            "{} does not call push_bridge::fuzzing::{name}",
            source.display()
        );
    }
    let targets = names(&fuzz_dir().join("fuzz_targets"));
    assert_eq!(targets.len(), known.len(), "fuzz targets: {targets:?}");
    // A regression directory belongs to a target too.
    for name in names(&fuzz_dir().join("regressions")) {
        assert!(
            known.contains(&name.as_str()),
            "fuzz/regressions/{name}: no such target"
        );
    }
}

#[test]
fn seed_corpus_replays() {
    let mut total = 0;
    let mut failed = Vec::new();
    for (name, target) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let (count, mut bad) = replay(&dir, *target);
        assert!(count > 0, "{} is missing or empty", dir.display());
        total += count;
        failed.append(&mut bad);
    }
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
    assert!(total >= TARGETS.len());
}

#[test]
fn regressions_replay() {
    let mut failed = Vec::new();
    for (name, target) in TARGETS {
        let (_, mut bad) = replay(&fuzz_dir().join("regressions").join(name), *target);
        failed.append(&mut bad);
    }
    assert!(
        failed.is_empty(),
        "regressions that fail again: {failed:#?}"
    );
}
