//! Logging (docs/configuration.md "[log]"): one tracing subscriber for the process, text or
//! JSON lines on stderr (journald captures it), filtered by `log.level` unless
//! `RUST_LOG` is set, which then decides. The filter sits behind a reload handle so
//! that SIGHUP can apply a new `log.level` without a restart.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat};

/// The variable that overrides `log.level`.
pub const RUST_LOG: &str = "RUST_LOG";

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("{RUST_LOG}={value:?} is not a log filter ({reason}); unset it or write e.g. \"info,push_bridge=debug\"")]
    BadRustLog { value: String, reason: String },
    #[error("log.level {value:?} is not a log filter ({reason})")]
    BadLevel { value: String, reason: String },
    #[error("logging is already set up in this process")]
    AlreadyInitialized,
    #[error("logging is not set up yet, so the log level cannot be changed")]
    NotInitialized,
    #[error("cannot change the log level: {0}")]
    Reload(String),
}

/// Changes the filter of a running subscriber; `RUST_LOG`, when it decided, wins.
#[derive(Debug, Clone)]
struct LevelHandle {
    reload: reload::Handle<EnvFilter, Registry>,
    from_rust_log: bool,
}

static HANDLE: OnceLock<LevelHandle> = OnceLock::new();

/// Installs the process-wide subscriber; call once, early in `serve`.
pub fn init_logging(config: &LogConfig) -> Result<(), LoggingError> {
    let rust_log = std::env::var_os(RUST_LOG).map(|v| v.to_string_lossy().into_owned());
    let ansi = std::io::stderr().is_terminal();
    let (subscriber, handle) = subscriber(config, rust_log.as_deref(), std::io::stderr, ansi)?;
    subscriber
        .try_init()
        .map_err(|_| LoggingError::AlreadyInitialized)?;
    // `try_init` succeeded, so this is the first and only handle.
    let _ = HANDLE.set(handle);
    Ok(())
}

/// Applies a new `log.level` (on SIGHUP). Does nothing while `RUST_LOG` decides.
pub fn reload_level(level: &str) -> Result<(), LoggingError> {
    HANDLE.get().ok_or(LoggingError::NotInitialized)?.set(level)
}

impl LevelHandle {
    fn set(&self, level: &str) -> Result<(), LoggingError> {
        if self.from_rust_log {
            return Ok(());
        }
        let filter = level_filter(level)?;
        self.reload
            .reload(filter)
            .map_err(|e| LoggingError::Reload(e.to_string()))
    }
}

fn level_filter(level: &str) -> Result<EnvFilter, LoggingError> {
    let filter = EnvFilter::builder()
        .parse(level)
        .map_err(|e| LoggingError::BadLevel {
            value: level.to_string(),
            reason: e.to_string(),
        })?;
    // The AMQP client logs each failed connection at ERROR, reconnects included; the
    // bridge says the same as one rate-limited warning naming the source. Its own
    // lines show only when `log.level` names it (e.g. "info,lapin=debug").
    if level.contains("lapin") {
        return Ok(filter);
    }
    Ok(match "lapin=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    })
}

/// The filter: a non-empty `RUST_LOG` if given, else `log.level`. The flag says which.
fn filter(level: &str, rust_log: Option<&str>) -> Result<(EnvFilter, bool), LoggingError> {
    match rust_log.filter(|v| !v.trim().is_empty()) {
        Some(value) => EnvFilter::builder()
            .parse(value)
            .map(|f| (f, true))
            .map_err(|e| LoggingError::BadRustLog {
                value: value.to_string(),
                reason: e.to_string(),
            }),
        None => level_filter(level).map(|f| (f, false)),
    }
}

/// The subscriber and its level handle, writing to `writer` (stderr, or a buffer in
/// tests).
fn subscriber<W>(
    config: &LogConfig,
    rust_log: Option<&str>,
    writer: W,
    ansi: bool,
) -> Result<(impl tracing::Subscriber + Send + Sync, LevelHandle), LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, from_rust_log) = filter(&config.level, rust_log)?;
    let (filter, reload) = reload::Layer::new(filter);
    let output = match config.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
    };
    let subscriber = Registry::default().with(filter).with(output);
    Ok((
        subscriber,
        LevelHandle {
            reload,
            from_rust_log,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn config(format: LogFormat, level: &str) -> LogConfig {
        LogConfig {
            format,
            level: level.to_string(),
        }
    }

    /// Runs `f` with a subscriber built from `config` and `rust_log`; returns the output.
    fn logged(config: &LogConfig, rust_log: Option<&str>, f: impl FnOnce(&LevelHandle)) -> String {
        let capture = Capture::default();
        let (subscriber, handle) = subscriber(config, rust_log, capture.clone(), false).unwrap();
        tracing::subscriber::with_default(subscriber, || f(&handle));
        capture.text()
    }

    #[test]
    fn text_at_the_configured_level() {
        let out = logged(&config(LogFormat::Text, "info"), None, |_| {
            tracing::info!(peer = "127.0.0.1:1", "shown");
            tracing::debug!("hidden");
        });
        assert!(
            out.contains("INFO") && out.contains("shown") && out.contains("peer=\"127.0.0.1:1\""),
            "{out}"
        );
        assert!(!out.contains("hidden"), "{out}");
        assert!(
            !out.contains('\u{1b}'),
            "no colour codes when asked for none: {out}"
        );
    }

    #[test]
    fn json_lines_with_fields_at_the_top() {
        let out = logged(&config(LogFormat::Json, "info"), None, |_| {
            tracing::warn!(socket = "pull", "rejected");
        });
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "rejected");
        assert_eq!(line["socket"], "pull");
    }

    #[test]
    fn rust_log_overrides_the_level_and_reloads() {
        let out = logged(&config(LogFormat::Text, "error"), Some("debug"), |handle| {
            handle.set("error").unwrap();
            tracing::debug!("from rust_log");
        });
        assert!(out.contains("from rust_log"), "{out}");
        // An empty RUST_LOG is no override.
        let out = logged(&config(LogFormat::Text, "error"), Some(" "), |_| {
            tracing::warn!("hidden");
        });
        assert!(!out.contains("hidden"), "{out}");
    }

    #[test]
    fn reload_changes_the_level() {
        let out = logged(&config(LogFormat::Text, "info"), None, |handle| {
            tracing::debug!("before");
            handle.set("debug").unwrap();
            tracing::debug!("after");
            let e = handle.set("push_bridge=loud").unwrap_err().to_string();
            assert!(
                e.starts_with("log.level \"push_bridge=loud\" is not a log filter"),
                "{e}"
            );
            tracing::debug!("kept");
        });
        assert!(
            !out.contains("before") && out.contains("after") && out.contains("kept"),
            "{out}"
        );
    }

    #[test]
    fn bad_filters_are_refused_naming_their_source() {
        let e = subscriber(
            &config(LogFormat::Text, "info"),
            Some("x=loud"),
            Capture::default(),
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with("RUST_LOG=\"x=loud\" is not a log filter"),
            "{e}"
        );
        let e = subscriber(
            &config(LogFormat::Text, "x=loud"),
            None,
            Capture::default(),
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with("log.level \"x=loud\" is not a log filter"),
            "{e}"
        );
    }

    #[test]
    fn reload_before_init_is_an_error() {
        // No test installs the global subscriber, so the handle is never set.
        assert!(matches!(
            reload_level("info"),
            Err(LoggingError::NotInitialized)
        ));
    }
}
