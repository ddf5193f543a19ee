//! `push-bridge token --topics 'a,b:*' --ttl 1h [--sub NAME] [--config FILE]`
//! (docs/configuration.md "Command line"): mints a JWT with the HS secret of
//! `[auth.jwt]`, for operators and tests. The configuration is loaded as
//! `check-config` loads it, and the token is printed alone on stdout, so
//! `TOKEN=$(push-bridge token …)` works.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::exit::{EXIT_CONFIG, EXIT_PUBLISH};
use crate::auth::jwt::{JwtError, JwtVerifier};
use crate::config::{Config, ConfigError, Loaded};
use crate::topic::Pattern;

#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct TokenArgs {
    /// Comma-separated patterns the token permits, e.g. 'package_created,article:*'.
    #[arg(long, value_name = "PATTERNS", value_delimiter = ',', required = true)]
    pub topics: Vec<Pattern>,
    /// How long the token is valid, e.g. 30m, 1h, 7days.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The token's subject (`sub`), shown in the bridge's logs.
    #[arg(long, value_name = "NAME")]
    pub sub: Option<String>,
    /// Configuration file [default: /etc/push-bridge/push-bridge.toml, if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Why no token was minted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[auth.jwt] is not configured: add it with auth.jwt.secret or auth.jwt.secret_file to mint tokens")]
    NotConfigured,
    #[error(transparent)]
    Jwt(#[from] JwtError),
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl =
        humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 30m, 1h, 7days)"))?;
    if ttl.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(ttl)
}

/// `token`: the token on `out` (exit 0); a configuration that cannot mint on `err`
/// (exit 2); a failure to sign or write (exit 1).
pub(super) fn token(
    loaded: Result<Loaded, ConfigError>,
    args: &TokenArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match loaded
        .map_err(TokenError::from)
        .and_then(|l| mint_token(&l.config, args))
    {
        Ok(token) => match writeln!(out, "{token}") {
            Ok(()) => 0,
            Err(_) => EXIT_PUBLISH,
        },
        Err(e) => {
            let _ = writeln!(err, "push-bridge token: {e}");
            match e {
                TokenError::Jwt(JwtError::Sign(_)) => EXIT_PUBLISH,
                _ => EXIT_CONFIG,
            }
        }
    }
}

/// Mints the token `args` asks for with the `[auth.jwt]` secret of `config`.
pub fn mint_token(config: &Config, args: &TokenArgs) -> Result<String, TokenError> {
    let jwt = config.auth.jwt.as_ref().ok_or(TokenError::NotConfigured)?;
    let verifier = JwtVerifier::from_config(jwt)?;
    Ok(verifier.mint(&args.topics, args.ttl, args.sub.as_deref())?)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::cli::{Args, Command};
    use crate::config::{self, Overrides};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Result<TokenArgs, clap::Error> {
        let all = ["push-bridge", "token"].iter().chain(args);
        match Args::try_parse_from(all)?.command {
            Some(Command::Token(args)) => Ok(args),
            other => panic!("not token: {other:?}"),
        }
    }

    fn run(config_toml: &str) -> (u8, String, String, Option<Config>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push-bridge.toml");
        std::fs::write(&path, config_toml).unwrap();
        let args = parse(&["--topics", "a,b:*", "--ttl", "1h", "--sub", "ops"]).unwrap();
        let loaded = load(&path);
        let config = loaded.as_ref().ok().map(|l| l.config.clone());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = token(loaded, &args, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, text(out), text(err), config)
    }

    fn load(path: &Path) -> Result<Loaded, ConfigError> {
        config::load_with_env(
            Some(path),
            &Overrides::default(),
            Vec::<(OsString, OsString)>::new(),
        )
    }

    #[test]
    fn token_arguments_parse() {
        let args = parse(&[
            "--topics", "a,b:*", "--ttl", "90m", "--sub", "ops", "--config", "/x.toml",
        ])
        .unwrap();
        let expected = TokenArgs {
            topics: vec![Pattern::parse("a").unwrap(), Pattern::parse("b:*").unwrap()],
            ttl: Duration::from_secs(90 * 60),
            sub: Some("ops".into()),
            config: Some("/x.toml".into()),
        };
        assert_eq!(args, expected);
        assert!(parse(&["--ttl", "1h"]).is_err(), "--topics is required");
        assert!(parse(&["--topics", "a"]).is_err(), "--ttl is required");
        for bad in [
            ["--topics", "a b"],
            ["--topics", "a,,b"],
            ["--ttl", "0s"],
            ["--ttl", "soon"],
        ] {
            let mut full = vec!["--topics", "a", "--ttl", "1h"];
            full.extend(bad);
            assert!(parse(&full).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_token_is_printed_alone_and_verifies() {
        let (code, out, err, config) = run(&format!("[auth.jwt]\nsecret = \"{SECRET}\"\n"));
        assert_eq!((code, err.as_str()), (0, ""));
        let token = out.strip_suffix('\n').unwrap();
        assert!(!token.contains(char::is_whitespace));
        let jwt = config.unwrap().auth.jwt.unwrap();
        let grant = JwtVerifier::from_config(&jwt)
            .unwrap()
            .verify(token)
            .unwrap();
        assert_eq!(grant.subject.as_deref(), Some("ops"));
        assert_eq!(
            grant.patterns,
            vec![Pattern::parse("a").unwrap(), Pattern::parse("b:*").unwrap()]
        );
    }

    #[test]
    fn a_configuration_that_cannot_mint_exits_2_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            r#"{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}"#,
        )
        .unwrap();
        let cases = [
            (String::new(), "[auth.jwt] is not configured"),
            (
                format!("[auth.jwt]\njwks_file = {:?}\n", jwks.display().to_string()),
                "auth.jwt.secret_file",
            ),
            (
                "[auth.jwt]\nsecret = \"\"\n".to_string(),
                "auth.jwt.secret is empty",
            ),
            ("[auth.jwt\n".to_string(), "not valid TOML"),
        ];
        for (toml, expected) in cases {
            let (code, out, err, _) = run(&toml);
            assert_eq!((code, out.as_str()), (EXIT_CONFIG, ""), "{toml}");
            assert!(
                err.starts_with("push-bridge token: ") && err.contains(expected),
                "{err}"
            );
        }
    }
}
