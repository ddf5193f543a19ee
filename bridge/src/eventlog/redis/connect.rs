//! Connecting to the cluster's Redis: the server `cluster.redis` names, or the master
//! its sentinels name at the moment (asked again at every reconnect, so a failover is
//! followed).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, RedisConnectionInfo, RedisResult};

use super::address::RedisAddress;

/// How long connecting may take, sentinel question included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Connector {
    address: RedisAddress,
}

impl Connector {
    pub fn new(address: RedisAddress) -> Self {
        Connector { address }
    }

    /// A new connection whose commands fail after `response_timeout` without an answer.
    pub async fn connect(&self, response_timeout: Duration) -> RedisResult<MultiplexedConnection> {
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, self.client()).await {
            Ok(client) => client?,
            Err(_) => return Err(timed_out("asking the sentinels for the master")),
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    async fn client(&self) -> RedisResult<Client> {
        match &self.address {
            RedisAddress::Server { url } => Client::open(url.as_str()),
            RedisAddress::Sentinel {
                sentinels,
                master,
                db,
                username,
                password,
            } => {
                let mut server = RedisConnectionInfo::default().set_db(*db);
                if let Some(username) = username {
                    server = server.set_username(username);
                }
                if let Some(password) = password {
                    server = server.set_password(password);
                }
                let urls: Vec<String> = sentinels.iter().map(|s| format!("redis://{s}")).collect();
                let mut sentinel = SentinelClient::build(
                    urls,
                    master.clone(),
                    Some(SentinelNodeConnectionInfo::default().set_redis_connection_info(server)),
                    SentinelServerType::Master,
                )?;
                sentinel.async_get_client().await
            }
        }
    }
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}
