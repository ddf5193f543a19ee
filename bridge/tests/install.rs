//! The service files (docs/operations.md): `scripts/install.sh` into a
//! temporary DESTDIR (idempotent, never overwrites a config, `--uninstall` keeps it,
//! `--purge` does not), and the units as installed pass `systemd-analyze verify` with
//! no output at all (it only warns on unknown keys) and keep their
//! `systemd-analyze security` exposure, which docs/operations.md states.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_push-bridge")
}

/// Runs `scripts/install.sh ARGS` with `DESTDIR=destdir`; panics with its output
/// unless it succeeds. Returns standard output.
fn install(destdir: &Path, args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .args(args)
        .env("DESTDIR", destdir)
        .output()
        .expect("run bash");
    assert_success("scripts/install.sh", &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every path under `root` with its mode, modification time and content digest.
type Snapshot = BTreeMap<PathBuf, (u32, SystemTime, Option<Vec<u8>>)>;

fn snapshot(root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let digest = if meta.is_dir() {
                stack.push(path.clone());
                None
            } else {
                let bytes = std::fs::read(&path).expect("read");
                Some(Sha256::digest(&bytes).to_vec())
            };
            let mtime = meta.modified().expect("mtime");
            let relative = path.strip_prefix(root).expect("under root").to_path_buf();
            out.insert(
                relative,
                (meta.permissions().mode() & 0o7777, mtime, digest),
            );
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// `systemd-analyze ARGS`; a missing tool is a setup error with the fix.
fn systemd_analyze(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): install the systemd package, or run scripts/test")
        })
}

const INSTALLED: [&str; 8] = [
    "usr/local/bin/push-bridge",
    "usr/local/lib/systemd/system/push-bridge.service",
    "usr/local/lib/systemd/system/push-bridge.socket",
    "usr/local/lib/sysusers.d/push-bridge.conf",
    "usr/local/share/doc/push-bridge/operations.md",
    "usr/local/share/doc/push-bridge/configuration.md",
    "usr/local/share/doc/push-bridge/protocol.md",
    "usr/local/share/doc/push-bridge/push-bridge.toml.example",
];

#[test]
fn install_twice_changes_nothing_then_uninstall_keeps_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let first = install(root, &["--binary", binary()]);
    for path in INSTALLED {
        assert!(root.join(path).is_file(), "{path} not installed:\n{first}");
    }
    let config = root.join("etc/push-bridge/push-bridge.toml");
    assert_eq!(
        std::fs::read(&config).expect("config installed"),
        std::fs::read(repo().join("systemd/push-bridge.toml")).expect("example")
    );
    assert_eq!(
        std::fs::read(root.join(INSTALLED[0])).expect("binary"),
        std::fs::read(binary()).expect("built binary")
    );
    assert_eq!(mode(&root.join(INSTALLED[0])), 0o755);
    assert_eq!(mode(&config), 0o640);
    assert_eq!(mode(&root.join("etc/push-bridge")), 0o750);
    assert_eq!(mode(&root.join("var/lib/push-bridge")), 0o750);
    assert!(!first.contains("nothing changed"), "{first}");

    let before = snapshot(root);
    let second = install(root, &["--binary", binary()]);
    assert!(second.contains("nothing changed"), "second run:\n{second}");
    assert_eq!(
        second.lines().count(),
        1,
        "second run should only say so:\n{second}"
    );
    assert_eq!(snapshot(root), before, "the second run touched files");

    // A sysadmin's config is never overwritten, and the script says it kept it.
    std::fs::write(&config, "[log]\nlevel = \"debug\"\n").expect("edit config");
    let third = install(root, &["--binary", binary()]);
    assert!(third.contains("nothing changed"), "{third}");
    assert!(
        third.contains("kept your /etc/push-bridge/push-bridge.toml"),
        "{third}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        "[log]\nlevel = \"debug\"\n"
    );

    // A changed binary is replaced (an upgrade).
    std::fs::write(root.join(INSTALLED[0]), b"old").expect("fake old binary");
    let upgrade = install(root, &["--binary", binary()]);
    assert!(
        upgrade.contains("updated /usr/local/bin/push-bridge"),
        "{upgrade}"
    );
    assert!(!upgrade.contains("nothing changed"), "{upgrade}");

    let removed = install(root, &["--uninstall"]);
    for path in INSTALLED {
        assert!(
            !root.join(path).exists(),
            "{path} left after --uninstall:\n{removed}"
        );
    }
    assert!(!root.join("usr/local/share/doc/push-bridge").exists());
    assert!(
        !root.join("var/lib/push-bridge").exists(),
        "empty state dir left"
    );
    assert!(config.is_file(), "--uninstall removed the config");
    assert!(
        removed.contains("kept /etc/push-bridge/push-bridge.toml"),
        "{removed}"
    );
    let again = install(root, &["--uninstall"]);
    assert!(again.contains("nothing to remove"), "{again}");

    let purged = install(root, &["--purge"]);
    assert!(!config.exists(), "--purge kept the config:\n{purged}");
    assert!(!root.join("etc/push-bridge").exists(), "{purged}");
}

#[test]
fn uninstall_keeps_saved_history_and_purge_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    install(root, &["--binary", binary()]);
    let history = root.join("var/lib/push-bridge/history.jsonl");
    std::fs::write(&history, "{}\n").expect("history");
    let removed = install(root, &["--uninstall"]);
    assert!(history.is_file(), "{removed}");
    assert!(removed.contains("holds saved history"), "{removed}");
    install(root, &["--purge"]);
    assert!(!root.join("var/lib/push-bridge").exists());
}

#[test]
fn a_prefix_outside_usr_puts_units_in_etc_pointing_at_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    install(
        root,
        &["--binary", binary(), "--prefix", "/opt/push-bridge"],
    );
    assert!(root.join("opt/push-bridge/bin/push-bridge").is_file());
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/push-bridge.service"))
        .expect("unit in /etc/systemd/system");
    assert!(
        unit.contains("\nExecStart=/opt/push-bridge/bin/push-bridge serve --config /etc/push-bridge/push-bridge.toml\n"),
        "{unit}"
    );
    assert!(!unit.contains("/usr/local"), "{unit}");
    assert!(root.join("etc/sysusers.d/push-bridge.conf").is_file());
    install(root, &["--prefix", "/opt/push-bridge", "--uninstall"]);
    assert!(!root.join("opt/push-bridge/bin/push-bridge").exists());
    assert!(!root.join("etc/systemd/system/push-bridge.service").exists());
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["--frobnicate"],
        vec!["--prefix", "relative/dir"],
        vec!["--binary", "/nonexistent/push-bridge"],
        vec!["--binary"],
    ] {
        let output = Command::new("bash")
            .arg(repo().join("scripts/install.sh"))
            .args(&args)
            .env("DESTDIR", dir.path())
            .output()
            .expect("run bash");
        assert!(!output.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("install.sh: error:"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("read_dir").count(), 0);
}

/// The units as installed, with ExecStart pointing into the DESTDIR (verify checks
/// that the binary exists), pass `systemd-analyze verify` without a word.
#[test]
fn installed_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    install(&root, &["--binary", binary()]);
    let units = dir.path().join("units");
    std::fs::create_dir(&units).expect("mkdir");
    let installed_bin = root.join("usr/local/bin/push-bridge");
    let mut args = vec![std::ffi::OsString::from("verify")];
    for unit in ["push-bridge.service", "push-bridge.socket"] {
        let text = std::fs::read_to_string(root.join("usr/local/lib/systemd/system").join(unit))
            .expect("installed unit");
        let text = text.replace(
            "ExecStart=/usr/local/bin/push-bridge ",
            &format!("ExecStart={} ", installed_bin.display()),
        );
        std::fs::write(units.join(unit), text).expect("write unit");
        args.push(units.join(unit).into_os_string());
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let output = systemd_analyze(&args);
    assert_success("systemd-analyze verify", &output);
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "systemd-analyze verify said something (every warning counts):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // And the sysusers.d entry parses and creates the user and group.
    let sysroot = dir.path().join("sysroot");
    std::fs::create_dir_all(sysroot.join("etc")).expect("mkdir");
    let output = Command::new("systemd-sysusers")
        .arg(format!("--root={}", sysroot.display()))
        .arg(root.join("usr/local/lib/sysusers.d/push-bridge.conf"))
        .output()
        .expect("systemd-sysusers (systemd package)");
    assert_success("systemd-sysusers", &output);
    let passwd = std::fs::read_to_string(sysroot.join("etc/passwd")).expect("passwd");
    assert!(passwd.contains("push-bridge:x:"), "{passwd}");
    assert!(passwd.contains(":/var/lib/push-bridge:"), "{passwd}");
}

/// The hardening stays where docs/operations.md says it is.
#[test]
fn the_security_exposure_is_the_documented_one() {
    let unit = repo().join("systemd/push-bridge.service");
    let output = systemd_analyze(&[
        "security".as_ref(),
        "--offline=true".as_ref(),
        "--no-pager".as_ref(),
        unit.as_os_str(),
    ]);
    assert_success("systemd-analyze security", &output);
    let text = String::from_utf8_lossy(&output.stdout);
    let score = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for push-bridge.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    let value: f64 = score.parse().expect("exposure is a number");
    assert!(value <= 1.1, "exposure rose to {score}:\n{text}");
    let docs = std::fs::read_to_string(repo().join("docs/operations.md")).expect("docs");
    assert!(
        docs.contains(&format!("exposure level {score}")),
        "docs/operations.md does not state the measured exposure level {score}"
    );
}
