//! The `push-bridge` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = push_bridge::cli::Args::parse();
    match push_bridge::cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("push-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
