//! The command line (docs/configuration.md "Command line"): `serve` (the default),
//! `check-config`, `publish` and `token` (in `cli/token.rs`), and the hidden `generate`
//! (man pages and completions for packages, `cli/generate.rs`). Parsing is clap's; this module
//! turns each command into calls on the library and decides what is printed and the
//! exit status.
//!
//! Exit status: 0 success; 1 a runtime failure (serve stopped on an error, publish
//! failed); 2 the configuration was refused (so a unit can tell "fix the file" from
//! "try again"). The constants are in `cli/exit.rs`, which every command's file uses.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use push_bridge_publisher::{PublishError, Publisher};

use crate::app::ServeError;
use crate::config::{self, ConfigError, Loaded, Overrides};
use crate::event::is_valid_id;
use crate::topic::{Topic, TopicError};

mod exit;
mod generate;
mod token;
pub use exit::{EXIT_CONFIG, EXIT_PUBLISH};
pub use generate::{GenerateArgs, Generated};
pub use token::{mint_token, TokenArgs, TokenError};

/// ZeroMQ in, one-way WebSocket/SSE out: a push notification bridge.
///
/// Without a command, runs the bridge (`serve`).
#[derive(Debug, Parser)]
#[command(
    name = "push-bridge",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The `serve` options, accepted without the word `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bridge (the default command).
    #[command(display_name = "push-bridge")]
    Serve(ServeArgs),
    /// Validate the configuration and print it with the source of each value.
    ///
    /// Exits 2 with a message naming the key and the file on error.
    #[command(display_name = "push-bridge")]
    CheckConfig(CheckConfigArgs),
    /// Publish one event to a bridge's PULL socket over ZeroMQ; prints the event id.
    #[command(display_name = "push-bridge")]
    Publish(PublishArgs),
    /// Mint a JWT with the HS secret of [auth.jwt]; prints the token.
    #[command(display_name = "push-bridge")]
    Token(TokenArgs),
    /// Write the man pages or shell completions (for packagers).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct ServeArgs {
    /// Configuration file [default: /etc/push-bridge/push-bridge.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for WebSocket/SSE clients and HTTP endpoints (replaces server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// ZeroMQ endpoint for the PULL socket to bind; repeat for several (replaces
    /// ingress.pull).
    #[arg(long = "pull", value_name = "EP")]
    pub pull: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct CheckConfigArgs {
    /// Configuration file [default: /etc/push-bridge/push-bridge.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct PublishArgs {
    /// Topic of the event, e.g. `package_created` or `article:42`.
    pub topic: String,
    /// Event data: any JSON value, e.g. '{"state": "update"}'.
    #[arg(value_name = "JSON", allow_hyphen_values = true)]
    pub json: String,
    /// The bridge's PULL endpoint.
    #[arg(long, value_name = "EP", default_value = "tcp://127.0.0.1:5555")]
    pub endpoint: String,
    /// Event id (1–128 printable ASCII characters) [default: a new time-ordered id].
    #[arg(long)]
    pub id: Option<String>,
    /// How long to wait for the connection, and then for the event to be sent.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Runs the command. Errors that have their own exit status are printed here; an
/// `Err` is a runtime failure of `serve` for `main` to print (exit 1).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (stdout, stderr) = (&mut io::stdout(), &mut io::stderr());
    match args.command.unwrap_or(Command::Serve(args.serve)) {
        Command::Serve(serve_args) => serve(serve_args, stderr),
        Command::CheckConfig(check) => {
            let loaded = config::load(check.config.as_deref(), &Overrides::default());
            Ok(ExitCode::from(check_config(loaded, stdout, stderr)))
        }
        Command::Publish(publish_args) => {
            Ok(ExitCode::from(publish(&publish_args, stdout, stderr)))
        }
        Command::Token(token_args) => {
            let loaded = config::load(token_args.config.as_deref(), &Overrides::default());
            Ok(ExitCode::from(token::token(
                loaded,
                &token_args,
                stdout,
                stderr,
            )))
        }
        Command::Generate(generate_args) => Ok(ExitCode::from(generate::generate(
            &generate_args,
            Args::command(),
            stdout,
            stderr,
        ))),
    }
}

fn serve(args: ServeArgs, stderr: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        listen: args.listen,
        pull: args.pull,
    };
    let loaded = match config::load(args.config.as_deref(), &overrides) {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = writeln!(stderr, "push-bridge: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    // `app::serve` reads the files the configuration names, sets up logging
    // (`ops::logging::init_logging`) and runs.
    match crate::app::serve(loaded) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(ServeError::Config(e)) => {
            let _ = writeln!(stderr, "push-bridge: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(ServeError::Runtime(e)) => Err(e),
    }
}

/// `check-config`: the effective configuration on `out` (exit 0), or the refusal on
/// `err` (exit 2).
fn check_config(
    loaded: Result<Loaded, ConfigError>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    // What `serve` reads before it starts is read too (tokens file, JWT keys, TLS
    // files), so a broken file shows up here rather than at the next start.
    let checked = loaded.map_err(|e| e.to_string()).and_then(|loaded| {
        let prepared = crate::app::prepare(&loaded.config);
        prepared.map(|_| loaded).map_err(|e| e.to_string())
    });
    match checked {
        Ok(loaded) => match out.write_all(loaded.render_effective().as_bytes()) {
            Ok(()) => 0,
            Err(e) => {
                let _ = writeln!(err, "push-bridge: cannot write the configuration: {e}");
                EXIT_PUBLISH
            }
        },
        Err(e) => {
            let _ = writeln!(err, "push-bridge: {e}");
            EXIT_CONFIG
        }
    }
}

/// Why `publish` failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishCliError {
    #[error("topic {topic:?} {reason}")]
    Topic { topic: String, reason: TopicError },
    #[error("--id {0:?} is not an event id: it must be 1–128 printable ASCII characters")]
    Id(String),
    #[error("the event data is not JSON ({0}); quote it for the shell, e.g. '{{\"state\": \"update\"}}'")]
    Json(serde_json::Error),
    #[error("--timeout must be greater than zero")]
    Timeout,
    #[error("cannot open a connection to {endpoint}: {cause}")]
    Connect {
        endpoint: String,
        cause: PublishError,
    },
    #[error("no bridge answered at {endpoint} within {} ({cause})", humantime::format_duration(*timeout))]
    NotConnected {
        endpoint: String,
        timeout: Duration,
        cause: PublishError,
    },
    #[error("cannot publish to {endpoint}: {cause}")]
    Publish {
        endpoint: String,
        cause: PublishError,
    },
    #[error("event {id} may not have reached {endpoint}: {cause}")]
    Close {
        id: String,
        endpoint: String,
        cause: PublishError,
    },
}

/// `publish`: the event id on `out` (exit 0), or what went wrong on `err` (exit 1).
fn publish(args: &PublishArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match publish_event(args) {
        Ok(id) => match writeln!(out, "{id}") {
            Ok(()) => 0,
            Err(_) => EXIT_PUBLISH,
        },
        Err(e) => {
            let _ = writeln!(err, "push-bridge publish: {e}");
            EXIT_PUBLISH
        }
    }
}

/// Checks the arguments locally (no connection for a typo), then connects, waits for
/// the bridge, publishes and closes with the timeout as linger. Returns the event id.
pub fn publish_event(args: &PublishArgs) -> Result<String, PublishCliError> {
    check_publish_args(args)?;
    let endpoint = &args.endpoint;
    let publisher = Publisher::connect(endpoint).map_err(|cause| PublishCliError::Connect {
        endpoint: endpoint.clone(),
        cause,
    })?;
    publisher
        .wait_connected(args.timeout)
        .map_err(|cause| PublishCliError::NotConnected {
            endpoint: endpoint.clone(),
            timeout: args.timeout,
            cause,
        })?;
    let id = publisher
        .publish_json(&args.topic, &args.json, args.id.as_deref())
        .map_err(|cause| PublishCliError::Publish {
            endpoint: endpoint.clone(),
            cause,
        })?;
    publisher
        .close(args.timeout)
        .map_err(|cause| PublishCliError::Close {
            id: id.clone(),
            endpoint: endpoint.clone(),
            cause,
        })?;
    Ok(id)
}

fn check_publish_args(args: &PublishArgs) -> Result<(), PublishCliError> {
    Topic::parse(&args.topic).map_err(|reason| PublishCliError::Topic {
        topic: args.topic.clone(),
        reason,
    })?;
    if let Some(id) = &args.id {
        if !is_valid_id(id) {
            return Err(PublishCliError::Id(id.clone()));
        }
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&args.json).map_err(PublishCliError::Json)?;
    if args.timeout.is_zero() {
        return Err(PublishCliError::Timeout);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
