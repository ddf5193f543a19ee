//! `push-bridge generate man|bash|zsh|fish [--out DIR]` (hidden from `--help`): the man
//! pages and the shell completions, generated from the clap definition of the command
//! line (`cli.rs` hands it in as a [`clap::Command`]) so that they cannot drift from it.
//! Packaging (`scripts/deb`) runs the built binary to produce them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Exit status when a file cannot be written (a runtime failure).
const EXIT_WRITE: u8 = 1;

#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[arg(value_enum)]
    pub what: Generated,
    /// Write the files into DIR (created if missing) instead of printing: for `man`,
    /// push-bridge.1 and one push-bridge-COMMAND.1 per command; for a shell, the file
    /// name that shell looks for (push-bridge.bash, _push-bridge, push-bridge.fish).
    /// Without it, `man` prints only push-bridge.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// Man pages (roff, section 1).
    Man,
    /// Bash completions.
    Bash,
    /// Zsh completions.
    Zsh,
    /// Fish completions.
    Fish,
}

/// One generated file: its name and content.
pub struct GeneratedFile {
    pub name: String,
    pub content: Vec<u8>,
}

const BIN: &str = "push-bridge";

/// The command as the man pages and completions describe it: without clap's `help`
/// subcommand (`--help` is everywhere already).
fn documented(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The man pages of `cmd`: `push-bridge.1`, whose SUBCOMMANDS section names every
/// visible command, then one `push-bridge-COMMAND.1` per command (the names that section
/// refers to).
pub fn man_pages(cmd: clap::Command) -> Vec<GeneratedFile> {
    let cmd = documented(cmd);
    let mut pages = vec![render_man(cmd.clone())];
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        // The commands display as `push-bridge` (for usage lines); a page of its own
        // is named after the command.
        let name = format!("{BIN}-{}", sub.get_name());
        pages.push(render_man(sub.clone().display_name(name)));
    }
    pages
}

fn render_man(cmd: clap::Command) -> GeneratedFile {
    let man = clap_mangen::Man::new(cmd)
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("push-bridge manual");
    let mut content = Vec::new();
    man.render(&mut content)
        .expect("rendering into memory cannot fail");
    GeneratedFile {
        name: man.get_filename(),
        content,
    }
}

/// The completion script of `cmd` for `shell`, under the file name that shell looks for.
pub fn completions(cmd: clap::Command, shell: Shell) -> GeneratedFile {
    let mut cmd = documented(cmd);
    let mut content = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut content);
    GeneratedFile {
        name: clap_complete::Generator::file_name(&shell, BIN),
        content,
    }
}

/// `generate`: the files for `cmd` into `--out`, naming each on `out`, or the content
/// on `out`; exit 0, or 1 with the reason on `err`.
pub fn generate(
    args: &GenerateArgs,
    cmd: clap::Command,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let files = match args.what {
        Generated::Man => man_pages(cmd),
        Generated::Bash => vec![completions(cmd, Shell::Bash)],
        Generated::Zsh => vec![completions(cmd, Shell::Zsh)],
        Generated::Fish => vec![completions(cmd, Shell::Fish)],
    };
    let result = match &args.out {
        Some(dir) => write_files(dir, &files, out),
        // Without a directory only the first file fits: push-bridge.1 for `man`.
        None => out.write_all(&files[0].content).map_err(|e| (None, e)),
    };
    match result {
        Ok(()) => 0,
        Err((path, e)) => {
            let what = path.map_or("standard output".to_string(), |p| p.display().to_string());
            let _ = writeln!(err, "push-bridge generate: cannot write {what}: {e}");
            EXIT_WRITE
        }
    }
}

fn write_files(
    dir: &Path,
    files: &[GeneratedFile],
    out: &mut dyn Write,
) -> Result<(), (Option<PathBuf>, io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (Some(dir.to_path_buf()), e))?;
    for file in files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.content).map_err(|e| (Some(path.clone()), e))?;
        writeln!(out, "{}", path.display()).map_err(|e| (None, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Args;

    /// The command line `cli.rs` hands in.
    fn cli() -> clap::Command {
        Args::command()
    }

    fn text(file: &GeneratedFile) -> String {
        String::from_utf8(file.content.clone()).expect("UTF-8")
    }

    const COMMANDS: [&str; 4] = ["serve", "check-config", "publish", "token"];

    #[test]
    fn the_man_page_names_every_command_and_each_has_its_page() {
        let pages = man_pages(cli());
        let names: Vec<&str> = pages.iter().map(|page| page.name.as_str()).collect();
        let mut expected = vec!["push-bridge.1".to_string()];
        expected.extend(COMMANDS.iter().map(|c| format!("push-bridge-{c}.1")));
        assert_eq!(names, expected);

        let main = text(&pages[0]);
        assert!(main.contains(".TH push-bridge 1 "), "{main}");
        for command in COMMANDS {
            // roff writes a hyphen as `\-`.
            let page = format!("push-bridge-{command}(1)").replace('-', "\\-");
            assert!(
                main.contains(&page),
                "push-bridge.1 does not name {command}:\n{main}"
            );
        }
        // The serve options, accepted without `serve`, are on the main page.
        for option in ["config", "listen", "pull"] {
            assert!(
                main.contains(&format!("\\-\\-{option}")),
                "{option}:\n{main}"
            );
        }
        assert!(
            !main.contains("generate"),
            "the hidden command is listed:\n{main}"
        );

        let check = text(&pages[2]);
        assert!(
            check.contains(&format!(
                ".TH push-bridge-check-config 1  \"push-bridge {}\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{check}"
        );
        assert!(
            check.contains("push\\-bridge check\\-config"),
            "synopsis:\n{check}"
        );
        assert!(check.contains("\\-\\-config"), "{check}");
    }

    #[test]
    fn completions_offer_every_command_in_every_shell() {
        for (shell, name) in [
            (Shell::Bash, "push-bridge.bash"),
            (Shell::Zsh, "_push-bridge"),
            (Shell::Fish, "push-bridge.fish"),
        ] {
            let file = completions(cli(), shell);
            assert_eq!(file.name, name);
            let script = text(&file);
            for command in COMMANDS {
                assert!(script.contains(command), "{shell}: no {command}:\n{script}");
            }
            // The serve options at the top level (fish writes `-l listen`).
            assert!(script.contains("listen"), "{shell}:\n{script}");
        }
    }

    #[test]
    fn out_writes_the_files_and_names_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out_dir = dir.path().join("man");
        let args = GenerateArgs {
            what: Generated::Man,
            out: Some(out_dir.clone()),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(generate(&args, cli(), &mut out, &mut err), 0);
        assert!(err.is_empty());
        let listed = String::from_utf8(out).expect("UTF-8");
        assert_eq!(listed.lines().count(), 1 + COMMANDS.len(), "{listed}");
        for line in listed.lines() {
            assert!(Path::new(line).is_file(), "{line} not written");
        }
        assert_eq!(
            std::fs::read(out_dir.join("push-bridge.1")).expect("page"),
            man_pages(cli())[0].content
        );

        // An unwritable directory is an error naming it, exit 1.
        let blocked = GenerateArgs {
            what: Generated::Fish,
            out: Some(out_dir.join("push-bridge.1").join("sub")),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(generate(&blocked, cli(), &mut out, &mut err), EXIT_WRITE);
        let err = String::from_utf8(err).expect("UTF-8");
        assert!(err.contains("cannot write") && err.contains("sub"), "{err}");
    }

    #[test]
    fn without_out_man_prints_the_main_page() {
        let args = GenerateArgs {
            what: Generated::Man,
            out: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(generate(&args, cli(), &mut out, &mut err), 0);
        assert_eq!(out, man_pages(cli())[0].content);
    }
}
