//! The event log: where accepted messages go, and what proves a resume (placeholder).

pub mod redis;
