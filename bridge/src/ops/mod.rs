//! Operations: metrics, logging, rate-limited warnings, the shutdown signal that
//! every long-running task watches, and the decision that the bridge falls behind.

pub mod behind;
pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod shutdown;
pub mod systemd;
