//! Interoperability with another libzmq binding: a pyzmq PULL (as a Python bridge
//! stand-in would be) and a pyzmq SUB receive exactly the frames the SDK sends.
//!
//! Needs `python3` with pyzmq (`scripts/test` installs it): without it these tests
//! fail rather than skip, so a green run always means the interoperability was tested.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use push_bridge_publisher::{wire, Publisher};

/// Receives `count` messages and prints each as a JSON list of hex-encoded frames.
/// `mode` is `pull` (bind a PULL on a free port and print it) or `sub ENDPOINT`.
/// Every wait is bounded by a 10 s receive timeout.
const PEER: &str = r#"
import json, sys, zmq
mode, count = sys.argv[1], int(sys.argv[2])
ctx = zmq.Context()
if mode == "pull":
    s = ctx.socket(zmq.PULL)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    print(port, flush=True)
else:
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(sys.argv[3])
    print("subscribed", flush=True)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.setsockopt(zmq.LINGER, 0)
for _ in range(count):
    print(json.dumps([f.hex() for f in s.recv_multipart()]), flush=True)
"#;

fn pyzmq_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import zmq"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with pyzmq is required: run scripts/test, or pip install pyzmq"
    );
    ok
}

/// The Python peer, killed if the test ends early.
struct PyPeer {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl PyPeer {
    fn start(args: &[&str]) -> PyPeer {
        let mut child = Command::new("python3")
            .args(["-c", PEER])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        PyPeer {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    fn line(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(line)) => line,
            other => panic!("the Python peer stopped early: {other:?}"),
        }
    }

    fn frames(&mut self) -> Vec<Vec<u8>> {
        let hex: Vec<String> = serde_json::from_str(&self.line()).unwrap();
        hex.iter().map(|h| decode_hex(h)).collect()
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_pyzmq_pull_receives_the_exact_frames() {
    if !pyzmq_available() {
        return;
    }
    let mut peer = PyPeer::start(&["pull", "3"]);
    let endpoint = format!("tcp://127.0.0.1:{}", peer.line());
    // The peer leaves after three messages, which to a publisher with a resend window
    // is a bridge gone with the last ones possibly unread: close() would then report
    // them unflushed. This test is about the frames, so no window.
    let publisher = Publisher::builder()
        .resend_window(0)
        .connect(&endpoint)
        .unwrap();
    publisher.wait_connected(Duration::from_secs(10)).unwrap();

    let big = "x".repeat(1024 * 1024);
    let expected = [
        wire::encode(
            "package_created",
            &publisher
                .publish("package_created", &serde_json::json!({"state": "create"}))
                .unwrap(),
            r#"{"state":"create"}"#,
        ),
        wire::encode(
            "tenant:7:news",
            "retry-1",
            publisher
                .publish_with_id("tenant:7:news", "retry-1", "caf\u{e9} \u{1f600}")
                .map(|_| "\"caf\u{e9} \u{1f600}\"")
                .unwrap(),
        ),
        wire::encode(
            "big",
            &publisher
                .publish_json("big", &format!("\"{big}\""), None)
                .unwrap(),
            format!("\"{big}\""),
        ),
    ];
    for frames in expected {
        assert_eq!(peer.frames(), frames.to_vec());
    }
    publisher.close(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_pyzmq_sub_receives_from_bind_pub() {
    if !pyzmq_available() {
        return;
    }
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let mut peer = PyPeer::start(&["sub", "1", publisher.endpoint()]);
    assert_eq!(peer.line(), "subscribed");
    publisher.wait_connected(Duration::from_secs(10)).unwrap();
    let id = publisher
        .publish("news", &serde_json::json!([1, "a"]))
        .unwrap();
    assert_eq!(
        peer.frames(),
        wire::encode("news", &id, r#"[1,"a"]"#).to_vec()
    );
}
