//! Operations: metrics, logging, rate-limited warnings and the shutdown signal that
//! every long-running task watches.

pub mod logging;
pub mod metrics;
pub mod ratelimit;
pub mod shutdown;
pub mod systemd;
