//! The ingress against real libzmq peers: pyzmq PUSH and PUB (a python3 subprocess
//! running tests/peers.py) and a Rust `zmq` PUSH, plus raw TCP garbage. Needs python3
//! with pyzmq (`pip install pyzmq`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use push_bridge::config::IngressConfig;
use push_bridge::event::IngressMessage;
use push_bridge::ingress::{Ingress, IngressError};
use push_bridge::topic::Topic;

type Arrivals = Receiver<(Instant, IngressMessage)>;

fn start(config: &IngressConfig) -> (Ingress, Arrivals) {
    let (tx, rx) = mpsc::channel();
    let sink = Box::new(move |m| {
        let _ = tx.send((Instant::now(), m));
    });
    let ingress = Ingress::start(config, sink).expect("ingress starts");
    (ingress, rx)
}

fn pull_config() -> IngressConfig {
    IngressConfig {
        pull: vec!["tcp://127.0.0.1:0".to_string()],
        ..IngressConfig::default()
    }
}

fn next(rx: &Arrivals, within: Duration) -> IngressMessage {
    rx.recv_timeout(within)
        .expect("a message arrives in time")
        .1
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

/// A python peer process, killed when dropped (so a failing test leaves none behind).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python(args: &[&str]) -> (Peer, BufReader<ChildStdout>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (is pyzmq installed?)");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (Peer(child), stdout)
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim().to_string()
}

/// What tests/peers.py `push` sends as message `seq`.
fn expected(seq: u64) -> IngressMessage {
    let (topic, id, data) = match seq % 3 {
        0 => (
            "package_created",
            None,
            format!(r#"{{"package":{{"id":{seq}}},"state":"create"}}"#),
        ),
        1 => ("seq", None, format!(r#"{{"seq":{seq}}}"#)),
        _ => (
            "seq",
            Some(format!("id-{seq}")),
            format!(r#"{{"seq":{seq}}}"#),
        ),
    };
    IngressMessage {
        topic: Topic::parse(topic).unwrap(),
        id,
        data,
    }
}

fn rust_push(endpoint: &str) -> zmq::Socket {
    let socket = zmq::Context::new().socket(zmq::PUSH).unwrap();
    socket.set_linger(5000).unwrap();
    socket.connect(endpoint).unwrap();
    socket
}

#[test]
fn pyzmq_and_rust_pushes_arrive_complete_and_in_order() {
    let ipc = format!(
        "ipc://{}/push-bridge-ingress-test-{}.sock",
        std::env::temp_dir().display(),
        std::process::id()
    );
    let config = IngressConfig {
        pull: vec!["tcp://127.0.0.1:0".to_string(), ipc.clone()],
        ..IngressConfig::default()
    };
    let (ingress, rx) = start(&config);
    let tcp = ingress.bound_endpoints()[0].clone();
    assert_ne!(port_of(&tcp), 0, "{tcp}");
    assert_eq!(ingress.bound_endpoints()[1], ipc);

    const N: u64 = 30_000;
    let t0 = Instant::now();
    let (mut child, mut out) = python(&["push", &tcp, &N.to_string()]);
    for seq in 0..N {
        assert_eq!(
            next(&rx, Duration::from_secs(10)),
            expected(seq),
            "message {seq}"
        );
    }
    let elapsed = t0.elapsed();
    let monitor = line(&mut out);
    assert!(child.0.wait().unwrap().success());
    eprintln!("pyzmq PUSH: {N} messages in {elapsed:?} (incl. python start); monitor {monitor}");

    for endpoint in [&tcp, &ipc] {
        let push = rust_push(endpoint);
        let t0 = Instant::now();
        for seq in 0..N {
            push.send_multipart(expected(seq).frames(), 0).unwrap();
        }
        for seq in 0..N {
            assert_eq!(
                next(&rx, Duration::from_secs(10)),
                expected(seq),
                "{endpoint} {seq}"
            );
        }
        eprintln!(
            "Rust PUSH over {endpoint}: {N} messages in {:?}",
            t0.elapsed()
        );
    }
    ingress.shutdown();
}

trait Frames {
    fn frames(&self) -> Vec<Vec<u8>>;
}
impl Frames for IngressMessage {
    /// The multipart form of a message (the tests only compare parsed results).
    fn frames(&self) -> Vec<Vec<u8>> {
        let mut frames = vec![self.topic.as_str().as_bytes().to_vec()];
        if let Some(id) = &self.id {
            frames.push(id.as_bytes().to_vec());
        }
        frames.push(self.data.as_bytes().to_vec());
        frames
    }
}

#[test]
fn garbage_and_rejected_messages_do_not_disturb_later_ones() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let config = IngressConfig {
        max_message_bytes: 1024,
        ..pull_config()
    };
    let (ingress, rx) = metrics::with_local_recorder(&recorder, || start(&config));
    let endpoint = ingress.bound_endpoints()[0].clone();
    let port = port_of(&endpoint);

    // Raw garbage, an HTTP request, and a half greeting left open.
    let mut garbage: Vec<TcpStream> = Vec::new();
    for bytes in [
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"\xff\0\0\0\0\0\0\0\x01".to_vec(),
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = stream.write_all(&bytes);
        garbage.push(stream);
    }

    // A well-behaved peer interleaving bad messages with good ones.
    let push = rust_push(&endpoint);
    let bad: [&[&[u8]]; 6] = [
        &[b"t", b"{"],
        &[b"\xff", b"1"],
        &[b"a b", b"1"],
        &[b"t", b"bad id\x01", b"1"],
        &[b"t", b"1", b"1", b"1"],
        &[br#"{"no":"topic"}"#],
    ];
    let too_large = vec![b'1'; 1025];
    for seq in 0..600u64 {
        match seq % 10 {
            7 => push
                .send_multipart(bad[(seq / 10) as usize % bad.len()], 0)
                .unwrap(),
            8 => push.send_multipart([&b"t"[..], &too_large], 0).unwrap(),
            _ => push.send_multipart(expected(seq).frames(), 0).unwrap(),
        }
    }
    for seq in (0..600u64).filter(|s| !matches!(s % 10, 7 | 8)) {
        assert_eq!(next(&rx, Duration::from_secs(5)), expected(seq));
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing else arrives"
    );

    // The garbage connections were dropped by libzmq (the half greeting may still wait).
    for (i, stream) in garbage.iter_mut().enumerate().take(2) {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut greeting = Vec::new();
        let closed = stream.read_to_end(&mut greeting);
        eprintln!(
            "garbage peer {i}: {closed:?} after reading {} bytes",
            greeting.len()
        );
    }

    let text = metrics.render();
    let count = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    assert_eq!(
        count(&format!(
            "push_bridge_ingress_messages_total{{socket=\"{}\"}}",
            config.pull[0]
        )),
        600
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"too_large\"}"),
        60
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"bad_json\"}"),
        10
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"bad_utf8\"}"),
        10
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"bad_topic\"}"),
        10
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"bad_id\"}"),
        10
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"frame_count\"}"),
        10
    );
    assert_eq!(
        count("push_bridge_ingress_rejected_total{reason=\"no_topic\"}"),
        10
    );
    ingress.shutdown();
}

/// A hand-made ZMTP 3.0 PUSH peer: greeting and READY, then whatever frame headers the
/// test writes. Returns once the bridge's greeting and READY have been read.
fn raw_zmtp_push(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    greeting.extend_from_slice(b"NULL");
    greeting.resize(64, 0);
    stream.write_all(&greeting).unwrap();
    let mut body = b"\x05READY".to_vec();
    body.extend_from_slice(b"\x0bSocket-Type\0\0\0\x04PUSH");
    stream.write_all(&[0x04, body.len() as u8]).unwrap();
    stream.write_all(&body).unwrap();
    let mut greeting = [0u8; 64];
    stream.read_exact(&mut greeting).unwrap();
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 0x04, "a short command");
    let mut ready = vec![0u8; header[1] as usize];
    stream.read_exact(&mut ready).unwrap();
    assert!(ready.starts_with(b"\x05READY"));
    stream
}

#[test]
fn a_frame_far_above_the_limit_costs_only_that_peer_its_connection() {
    let config = IngressConfig {
        max_message_bytes: 1024,
        ..pull_config()
    };
    let (ingress, rx) = start(&config);
    let port = port_of(&ingress.bound_endpoints()[0]);

    // Announce a 1 MiB frame (above the limit, below the 16 MiB ceiling): kept open,
    // since libzmq waits for the body (the message would then be rejected visibly).
    let mut patient = raw_zmtp_push(port);
    patient.write_all(&[0x02]).unwrap();
    patient.write_all(&(1u64 << 20).to_be_bytes()).unwrap();
    // Announce a 1 GiB frame: disconnected at once, nothing buffered.
    let mut greedy = raw_zmtp_push(port);
    greedy.write_all(&[0x02]).unwrap();
    greedy.write_all(&(1u64 << 30).to_be_bytes()).unwrap();

    let t0 = Instant::now();
    greedy
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = greedy.read_to_end(&mut rest);
    eprintln!("1 GiB frame header: disconnected after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(1));

    patient
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1];
    let still_open =
        matches!(patient.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(still_open, "a merely too large frame does not disconnect");

    let push = rust_push(&ingress.bound_endpoints()[0]);
    push.send_multipart(expected(1).frames(), 0).unwrap();
    assert_eq!(next(&rx, Duration::from_secs(5)), expected(1));
    ingress.shutdown();
}

#[test]
fn heartbeating_pyzmq_push_keeps_its_connection() {
    let (ingress, rx) = start(&pull_config());
    let endpoint = ingress.bound_endpoints()[0].clone();
    // 200 messages, one per 20 ms: 4 s with PINGs every 100 ms.
    let (mut child, mut out) = python(&[
        "push",
        &endpoint,
        "200",
        "--heartbeat",
        "100",
        "--interval",
        "20",
    ]);
    let t0 = Instant::now();
    for seq in 0..200 {
        assert_eq!(next(&rx, Duration::from_secs(2)), expected(seq));
    }
    let monitor = line(&mut out);
    assert!(child.0.wait().unwrap().success());
    eprintln!(
        "heartbeating PUSH: 200 messages over {:?}; monitor {monitor}",
        t0.elapsed()
    );
    assert_eq!(
        monitor,
        r#"{"connected": 1, "disconnected": 0, "retried": 0}"#
    );
    ingress.shutdown();
}

/// Reads the gen-`gen` stream until its first message, returning when it came.
fn first_of_generation(rx: &Arrivals, gen: u64, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, m) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("generation {gen} arrives"));
        if m.data.starts_with(&format!(r#"{{"gen":{gen},"#)) {
            return at;
        }
    }
}

#[test]
fn sub_resumes_after_the_publisher_restarts() {
    let port = free_port();
    let config = IngressConfig {
        pull: Vec::new(),
        sub: vec![format!("tcp://127.0.0.1:{port}")],
        ..IngressConfig::default()
    };
    let (ingress, rx) = start(&config);
    assert!(ingress.bound_endpoints().is_empty());
    let bind = format!("tcp://127.0.0.1:{port}");

    let (mut publisher, mut out) = python(&["pub", &bind, "1"]);
    assert_eq!(line(&mut out), "bound");
    let t0 = Instant::now();
    first_of_generation(&rx, 1, Duration::from_secs(5));
    eprintln!(
        "SUB: first message {:?} after the publisher bound",
        t0.elapsed()
    );

    for (gen, outage) in [(2, 200), (3, 1500), (4, 4000)] {
        let outage = Duration::from_millis(outage);
        drop(publisher);
        std::thread::sleep(outage);
        while rx.try_recv().is_ok() {}
        let (restarted, mut out) = python(&["pub", &bind, &gen.to_string()]);
        publisher = restarted;
        assert_eq!(line(&mut out), "bound");
        let bound = Instant::now();
        let resumed = first_of_generation(&rx, gen, Duration::from_secs(10));
        let gap = resumed.saturating_duration_since(bound);
        eprintln!("SUB: outage {outage:?}, resumed {gap:?} after the publisher bound again");
        assert!(gap < Duration::from_millis(1500), "{gap:?}");
        // And it keeps flowing in order.
        let mut last = None;
        for _ in 0..20 {
            let m = next(&rx, Duration::from_secs(1));
            let seq: u64 = m
                .data
                .rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches('}')
                .parse()
                .unwrap();
            assert!(last.is_none_or(|l| seq == l + 1), "{last:?} then {seq}");
            last = Some(seq);
        }
    }
    drop(publisher);
    ingress.shutdown();
}

#[test]
fn startup_errors_name_the_endpoint() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_endpoint = format!("tcp://127.0.0.1:{}", busy.local_addr().unwrap().port());
    let start_err = |pull: &[&str], sub: &[&str]| -> IngressError {
        let config = IngressConfig {
            pull: pull.iter().map(|s| s.to_string()).collect(),
            sub: sub.iter().map(|s| s.to_string()).collect(),
            ..IngressConfig::default()
        };
        match Ingress::start(&config, Box::new(|_| {})) {
            Ok(_) => panic!("{pull:?} {sub:?} should not start"),
            Err(e) => e,
        }
    };
    assert_eq!(
        start_err(&["tcp://127.0.0.1:0", &busy_endpoint], &[]).to_string(),
        format!("cannot bind PULL socket to {busy_endpoint}: Address already in use")
    );
    assert_eq!(
        start_err(&["tcp://127.0.0.1"], &[]).to_string(),
        "cannot bind PULL socket to tcp://127.0.0.1: not a valid endpoint; write tcp://HOST:PORT or ipc:///PATH"
    );
    assert_eq!(
        start_err(&["udp://127.0.0.1:1"], &[]).to_string(),
        "invalid ingress endpoint \"udp://127.0.0.1:1\": unsupported transport; write tcp://HOST:PORT or ipc:///PATH"
    );
    for bad in [
        "tcp://192.0.2.1:5555",
        "tcp://no-such-host.invalid:5555",
        "ipc:///nonexistent-dir/x.sock",
    ] {
        let e = start_err(&[bad], &[]).to_string();
        assert!(
            e.starts_with(&format!("cannot bind PULL socket to {bad}: ")),
            "{e}"
        );
        eprintln!("{e}");
    }
    let e = start_err(&[], &["tcp://127.0.0.1:notaport"]).to_string();
    assert!(
        e.starts_with("cannot connect SUB socket to tcp://127.0.0.1:notaport: "),
        "{e}"
    );
    eprintln!("{e}");
}

#[test]
fn shutdown_is_prompt_and_frees_the_port() {
    let port = free_port();
    let config = IngressConfig {
        pull: vec![format!("tcp://127.0.0.1:{port}")],
        sub: vec![format!("tcp://127.0.0.1:{}", free_port())],
        ..IngressConfig::default()
    };
    // Idle.
    let (ingress, _rx) = start(&config);
    let t0 = Instant::now();
    ingress.shutdown();
    let idle = t0.elapsed();

    // Busy: a peer pushing as fast as it can.
    let (ingress, rx) = start(&config);
    let push = rust_push(&config.pull[0]);
    push.set_sndtimeo(1000).unwrap();
    push.set_linger(0).unwrap();
    for seq in 0..50_000u64 {
        let _ = push.send_multipart(expected(seq).frames(), 0);
    }
    next(&rx, Duration::from_secs(5));
    let t0 = Instant::now();
    ingress.shutdown();
    let busy = t0.elapsed();
    eprintln!("shutdown: idle {idle:?}, busy {busy:?}");
    assert!(idle < Duration::from_millis(200) && busy < Duration::from_millis(200));

    // Dropping without shutdown stops it as well; the port is free again each time.
    let (ingress, _rx) = start(&config);
    drop(ingress);
    let (ingress, _rx) = start(&config);
    ingress.shutdown();
}
