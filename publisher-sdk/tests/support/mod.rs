//! Helpers shared by the integration tests: real libzmq peers on loopback, with every
//! wait bounded so a broken publisher fails a test instead of hanging it.

#![allow(dead_code)] // each test file uses a different subset

use std::time::{Duration, Instant};

/// How long a test peer waits for a message before failing the test.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A libzmq socket standing in for the bridge, with its own context.
pub struct Peer {
    pub socket: zmq::Socket,
    pub endpoint: String,
    _context: zmq::Context,
}

impl Peer {
    /// A PULL bound on `endpoint` (use port 0 for any free port), like the bridge's.
    pub fn pull(endpoint: &str) -> Peer {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::PULL).unwrap();
        socket.set_linger(0).unwrap();
        socket
            .set_rcvtimeo(RECV_TIMEOUT.as_millis() as i32)
            .unwrap();
        socket.bind(endpoint).unwrap();
        let endpoint = socket.get_last_endpoint().unwrap().unwrap();
        Peer {
            socket,
            endpoint,
            _context: context,
        }
    }

    /// A SUB connected to `endpoint`, subscribed to `prefix`, like a bridge's `ingress.sub`.
    pub fn sub(endpoint: &str, prefix: &[u8]) -> Peer {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::SUB).unwrap();
        socket.set_linger(0).unwrap();
        socket
            .set_rcvtimeo(RECV_TIMEOUT.as_millis() as i32)
            .unwrap();
        socket.connect(endpoint).unwrap();
        socket.set_subscribe(prefix).unwrap();
        Peer {
            socket,
            endpoint: endpoint.to_owned(),
            _context: context,
        }
    }

    /// The next whole message, all its frames; fails the test after [`RECV_TIMEOUT`].
    pub fn recv(&self) -> Vec<Vec<u8>> {
        match self.socket.recv_multipart(0) {
            Ok(frames) => frames,
            Err(e) => panic!(
                "no message on {} within {RECV_TIMEOUT:?}: {e}",
                self.endpoint
            ),
        }
    }

    /// Whether a message arrives within `wait`.
    pub fn has_message_within(&self, wait: Duration) -> bool {
        self.socket
            .poll(zmq::POLLIN, wait.as_millis() as i64)
            .unwrap()
            > 0
    }
}

/// A loopback TCP port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `condition` every 10 ms until it holds; fails the test after `limit`.
pub fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
