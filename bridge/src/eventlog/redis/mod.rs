//! The cluster's log in Redis Streams (placeholder).

pub mod address;

pub use address::RedisAddress;
