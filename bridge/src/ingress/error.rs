//! Why the ingress could not start: the one error it returns, whatever the backend.
//! The backend (`zmq`) makes every one of them and `Ingress::start` hands them on;
//! both use this file, neither the other's.

/// Why the ingress could not start. Once running, it does not fail: bad messages and
/// receive errors are logged and counted.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("invalid ingress endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// `invalid`: libzmq could not parse the endpoint (a configuration error); else
    /// the failure may pass (a port in use, an address not up yet).
    #[error("cannot bind PULL socket to {endpoint}: {reason}")]
    Bind {
        endpoint: String,
        reason: String,
        invalid: bool,
    },
    #[error("cannot connect SUB socket to {endpoint}: {reason}")]
    Connect {
        endpoint: String,
        reason: String,
        invalid: bool,
    },
    #[error("cannot set up the ZeroMQ socket for {endpoint}: {reason}")]
    Setup { endpoint: String, reason: String },
    #[error("cannot start the ingress thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl IngressError {
    /// Whether the configuration must change for the ingress to start (restarting as
    /// it is cannot help).
    pub fn is_invalid_endpoint(&self) -> bool {
        match self {
            IngressError::InvalidEndpoint { .. } => true,
            IngressError::Bind { invalid, .. } | IngressError::Connect { invalid, .. } => *invalid,
            IngressError::Setup { .. } | IngressError::Thread(_) => false,
        }
    }
}
