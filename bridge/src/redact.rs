//! Secrets kept out of logs, errors and `check-config`: an address that carries
//! credentials is shown with its password replaced.

use std::fmt;

/// What a hidden secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Displays a URL (`scheme://user:password@host/…`) with the password part of its
/// credentials replaced by [`REDACTED`]; credentials without a `:` are all replaced
/// (Redis takes a lone password there). Text that is no such URL is shown as it is.
pub struct UrlRedacted<'a>(pub &'a str);

impl fmt::Display for UrlRedacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let Some((scheme, rest)) = text.split_once("://") else {
            return f.write_str(text);
        };
        let Some((credentials, host)) = rest.rsplit_once('@') else {
            return f.write_str(text);
        };
        match credentials.split_once(':') {
            Some((user, _)) => write!(f, "{scheme}://{user}:{REDACTED}@{host}"),
            None => write!(f, "{scheme}://{REDACTED}@{host}"),
        }
    }
}

/// [`UrlRedacted`] as a string.
pub fn url(text: &str) -> String {
    UrlRedacted(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_is_replaced() {
        assert_eq!(
            url("amqp://guest:s3cret@127.0.0.1:5672/%2f"),
            "amqp://guest:<redacted>@127.0.0.1:5672/%2f"
        );
        assert_eq!(url("redis://:pw@h:6379/0"), "redis://:<redacted>@h:6379/0");
        assert_eq!(url("redis://pw@h:6379/0"), "redis://<redacted>@h:6379/0");
        assert_eq!(url("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(url("not a url"), "not a url");
    }
}
