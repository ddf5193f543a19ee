//! Token introspection (docs/protocol.md "Authentication"): the bridge asks the
//! content API whether a token is valid, the way Superdesk Publisher checks its own
//! API keys, instead of keeping a copy of them.
//!
//! One `GET` to `auth.introspect.url` carries the token in `auth.introspect.header`:
//! `"Name"` sends the raw token in that header (Superdesk Publisher reads its API key
//! from a bare `Authorization` header), `"Name: Prefix"` sends `Prefix <token>` (the
//! default, `"Authorization: Bearer"`, sends `Authorization: Bearer <token>`). The
//! answer decides:
//!
//! - **2xx** accepts the token. With `topics_field` set, that top-level field of the
//!   JSON answer lists the permitted patterns (missing or `null`: all topics). An
//!   answer that cannot be read (not JSON, the field not a list of strings, a string
//!   that is not a valid pattern, more than [`MAX_ANSWER_BYTES`]) accepts nobody: it
//!   is [`Unavailable::BadAnswer`], because guessing what a broken answer meant could
//!   grant more than the API intended.
//! - **4xx** (except 408 and 429) rejects it: the API looked and said no.
//! - **5xx, 408, 429**, a timeout, a refused connection: the API could not tell.
//!   [`Unavailable`] makes the caller answer `503`, never a free pass and never a
//!   `401` that would make a client drop a good token. Redirects are not followed
//!   (they would carry the token elsewhere); a 3xx is a misconfigured URL, so also
//!   [`Unavailable::BadAnswer`].
//!
//! Verdicts (accepted and rejected alike) are cached for `cache_ttl`, keyed by the
//! token's SHA-256; [`Unavailable`] is not cached, so clients get in as soon as the
//! API is back. Concurrent checks of one token share one request (single-flight),
//! which runs in its own task: a client hanging up does not cancel the check that
//! other clients wait for. At most [`MAX_CONCURRENT_REQUESTS`] requests are in
//! flight at once, so a flood of made-up tokens cannot open thousands of
//! connections to the API. The token is never logged and never stored in clear.
//!
//! Proxy environment variables are ignored: the bridge talks to the configured URL
//! directly.

mod answer;
mod cache;
#[cfg(test)]
mod tests;
mod verdict;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue, ACCEPT};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};

use crate::config::IntrospectConfig;
use answer::{patterns_from_answer, read_body, Failure};
use cache::{AnswerCache, Key};
pub use verdict::{Unavailable, Verdict, MAX_ANSWER_BYTES};

/// Most verdicts kept; past that the oldest go first.
pub const CACHE_CAPACITY: usize = 100_000;
/// Most requests to the API in flight at once; more checks wait (within the timeout).
pub const MAX_CONCURRENT_REQUESTS: usize = 64;
/// A configuration the introspector cannot work with (found at start). The messages
/// name the key inside `[auth.introspect]`; the caller adds that prefix.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("url {url:?} is not a valid URL: {reason}")]
    Url { url: String, reason: String },
    #[error("url {url:?} must start with http:// or https://")]
    Scheme { url: String },
    #[error("header {header:?} is not a valid HTTP header name")]
    Header { header: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

type Outcome = Result<Verdict, Unavailable>;

/// Checks tokens against the API. Cheap to clone: clones share the HTTP connection
/// pool, the cache and the in-flight requests.
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: Url,
    /// `url` without its password, if it has one.
    url_for_logs: String,
    header: HeaderName,
    /// Written before the token, with a space (`Bearer`), if any.
    prefix: Option<String>,
    topics_field: Option<String>,
    timeout: Duration,
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    cache: AnswerCache,
    /// One receiver per token being asked about; it yields `Some` when the answer is in.
    in_flight: HashMap<Key, watch::Receiver<Option<Outcome>>>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("url", &self.inner.url_for_logs)
            .field("header", &self.inner.header)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    pub fn from_config(config: &IntrospectConfig) -> Result<Self, IntrospectError> {
        let url = Url::parse(&config.url).map_err(|e| IntrospectError::Url {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(IntrospectError::Scheme {
                url: config.url.clone(),
            });
        }
        let (name, prefix) = match config.header.split_once(':') {
            Some((name, prefix)) if !prefix.trim().is_empty() => {
                (name.trim(), Some(prefix.trim().to_string()))
            }
            Some((name, _)) => (name.trim(), None),
            None => (config.header.trim(), None),
        };
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| IntrospectError::Header {
                header: config.header.clone(),
            })?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("push-bridge/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(IntrospectError::Client)?;
        Ok(Introspector {
            inner: Arc::new(Inner {
                client,
                url_for_logs: redacted(&url),
                url,
                prefix,
                header,
                topics_field: config.topics_field.clone(),
                timeout: config.timeout,
                permits: Semaphore::new(MAX_CONCURRENT_REQUESTS),
                state: Mutex::new(State {
                    cache: AnswerCache::new(config.cache_ttl, CACHE_CAPACITY),
                    in_flight: HashMap::new(),
                }),
            }),
        })
    }

    /// Asks the API (or the cache). Errors mean "could not tell": the caller answers
    /// 503, never a free pass.
    pub async fn check(&self, token: &str) -> Result<Verdict, Unavailable> {
        let Some(value) = self.inner.header_value(token) else {
            // Control characters cannot travel in a header, so the API cannot know
            // this token.
            return Ok(Verdict::Rejected);
        };
        let key: Key = Sha256::digest(token.as_bytes()).into();
        let mut answer = {
            let mut state = self.inner.lock();
            if let Some(verdict) = state.cache.get(&key, Instant::now()) {
                return Ok(verdict);
            }
            match state.in_flight.get(&key) {
                Some(answer) => answer.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    state.in_flight.insert(key, rx.clone());
                    tokio::spawn(Arc::clone(&self.inner).ask(key, value, tx));
                    rx
                }
            }
        };
        // The task always sends before it ends; if it died instead, nobody can tell.
        let outcome = match answer.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        outcome.unwrap_or(Err(Unavailable::BadAnswer))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn header_value(&self, token: &str) -> Option<HeaderValue> {
        let mut value = if let Some(prefix) = &self.prefix {
            HeaderValue::from_bytes(format!("{prefix} {token}").as_bytes())
        } else {
            HeaderValue::from_bytes(token.as_bytes())
        }
        .ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// The single request for one token: asks, caches a verdict, hands the outcome
    /// to every waiter. Runs in its own task so no waiter's cancellation stops it.
    async fn ask(
        self: Arc<Self>,
        key: Key,
        value: HeaderValue,
        tx: watch::Sender<Option<Outcome>>,
    ) {
        let guard = InFlight { inner: &self, key };
        let outcome = tokio::time::timeout(self.timeout, self.request(value))
            .await
            .unwrap_or_else(|_| Err(Failure::new(Unavailable::Timeout, "no answer in time")));
        let outcome = match outcome {
            Ok(verdict) => {
                self.lock()
                    .cache
                    .insert(key, verdict.clone(), Instant::now());
                Ok(verdict)
            }
            Err(Failure { why, detail }) => {
                tracing::warn!(
                    url = %self.url_for_logs,
                    reason = why.reason(),
                    "token introspection failed, new clients get 503: {detail}"
                );
                Err(why)
            }
        };
        drop(guard);
        tx.send_replace(Some(outcome));
    }

    async fn request(&self, value: HeaderValue) -> Result<Verdict, Failure> {
        // Waiting for a permit counts against the timeout (the caller bounds us).
        let _permit =
            self.permits.acquire().await.map_err(|_| {
                Failure::new(Unavailable::Connect, "the introspector is shutting down")
            })?;
        let mut response = self
            .client
            .get(self.url.clone())
            .header(&self.header, value)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(Failure::from_reqwest)?;
        let status = response.status();
        if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            return Ok(Verdict::Rejected);
        }
        if status.is_server_error() || status.is_client_error() {
            let detail = format!("the API answered {status}");
            return Err(Failure::new(Unavailable::ServerError, detail));
        }
        if !status.is_success() {
            let detail = format!("the API answered {status} (redirects are not followed)");
            return Err(Failure::new(Unavailable::BadAnswer, detail));
        }
        let body = read_body(&mut response).await;
        let Some(field) = &self.topics_field else {
            // The status decides; the body was read only so the connection can be
            // reused, and whatever went wrong reading it does not matter (an API
            // that stalls mid-answer still runs into the timeout).
            return Ok(Verdict::Accepted { patterns: None });
        };
        let patterns = patterns_from_answer(&body?, field)
            .map_err(|detail| Failure::new(Unavailable::BadAnswer, detail))?;
        Ok(Verdict::Accepted { patterns })
    }
}

/// Removes the in-flight entry when the request task ends, however it ends.
struct InFlight<'a> {
    inner: &'a Inner,
    key: Key,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.inner.lock().in_flight.remove(&self.key);
    }
}

fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Cannot fail: the URL has a host, or it would have no password.
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}
