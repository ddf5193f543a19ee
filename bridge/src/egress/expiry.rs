//! When a session's token expires (JWT `exp`), as a timer on the runtime's clock: the
//! session closes with `4001` when it fires. Allocated only for a token that expires,
//! so idle sessions with static tokens stay small.

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use tokio::time::Sleep;

#[derive(Debug, Default)]
pub struct Expiry(Option<Pin<Box<Sleep>>>);

impl Expiry {
    /// A timer for a token expiring at `expires_at` (`None`: never fires).
    pub fn new(expires_at: Option<SystemTime>) -> Self {
        Expiry(expires_at.map(|at| {
            let left = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Box::pin(tokio::time::sleep(left))
        }))
    }

    /// Resolves when the token expires; never for a token that does not.
    pub async fn expired(&mut self) {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_at_the_expiry_and_never_without_one() {
        let start = tokio::time::Instant::now();
        let mut soon = Expiry::new(Some(SystemTime::now() + Duration::from_millis(300)));
        let mut past = Expiry::new(Some(SystemTime::now() - Duration::from_secs(5)));
        let mut never = Expiry::new(None);
        past.expired().await;
        soon.expired().await;
        assert!(start.elapsed() >= Duration::from_millis(250));
        let waited = tokio::time::timeout(Duration::from_millis(300), never.expired()).await;
        assert!(waited.is_err(), "no expiry, no close");
    }
}
