//! `Publisher::connect` (PUSH) against a real libzmq PULL on loopback: the exact frames
//! on the wire, ids, readiness, queueing while the peer is down, and bounded shutdown.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use push_bridge_publisher::{wire, PublishError, Publisher};
use serde::Serialize;
use support::{eventually, free_port, Peer};

const WAIT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Package {
    // Declared out of alphabetical order: the wire must keep this order.
    state: &'static str,
    package: Vec<u32>,
    note: Option<&'static str>,
}

#[test]
fn delivers_exactly_topic_id_and_json_frames() {
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::connect(&peer.endpoint).unwrap();
    publisher.wait_connected(WAIT).unwrap();
    assert!(publisher.is_connected());

    let data = Package {
        state: "create",
        package: vec![1, 2],
        note: None,
    };
    let id = publisher.publish("package_created", &data).unwrap();
    assert_eq!(
        peer.recv(),
        vec![
            b"package_created".to_vec(),
            id.into_bytes(),
            br#"{"state":"create","package":[1,2],"note":null}"#.to_vec(),
        ]
    );

    let id = publisher
        .publish_with_id("tenant:7:news", "retry-1", "caf\u{e9} \u{1f600}")
        .unwrap();
    assert_eq!(id, "retry-1");
    assert_eq!(
        peer.recv(),
        wire::encode("tenant:7:news", "retry-1", "\"caf\u{e9} \u{1f600}\"").to_vec()
    );

    // Pre-serialized JSON goes out byte for byte, whitespace included.
    let text = "{ \"b\" : 1,\n  \"a\" : [ ] }";
    let id = publisher.publish_json("t", text, None).unwrap();
    assert_eq!(peer.recv(), wire::encode("t", &id, text).to_vec());
    let id = publisher.publish_json("t", "null", Some("given")).unwrap();
    assert_eq!(id, "given");
    assert_eq!(peer.recv(), wire::encode("t", "given", "null").to_vec());
}

#[test]
fn ten_thousand_ids_are_unique_increasing_and_arrive_in_order() {
    let peer = Peer::pull("tcp://127.0.0.1:0");
    // The peer reads only once all are published: room to queue them all (the kernel
    // send buffer is kept small, see `resend_window`).
    let publisher = Publisher::builder()
        .send_hwm(10_000)
        .connect(&peer.endpoint)
        .unwrap();
    let sent: Vec<String> = (0..10_000)
        .map(|i| publisher.publish("load", &i).unwrap())
        .collect();
    for pair in sent.windows(2) {
        assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
    }
    for (i, id) in sent.iter().enumerate() {
        let frames = peer.recv();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1], id.as_bytes(), "message {i}");
        assert_eq!(frames[2], i.to_string().as_bytes());
    }
    publisher.close(WAIT).unwrap();
}

#[test]
fn wait_connected_fails_when_nothing_listens() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publisher = Publisher::connect(&endpoint).unwrap();
    let started = Instant::now();
    let err = publisher
        .wait_connected(Duration::from_millis(200))
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        PublishError::NotConnected {
            endpoint: e,
            waited,
        } => {
            assert_eq!(e, &endpoint);
            assert!(*waited >= Duration::from_millis(200), "{waited:?}");
        }
        other => panic!("expected NotConnected, got {other:?}"),
    }
    assert!(err.to_string().contains(&endpoint), "{err}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(!publisher.is_connected());
}

#[test]
fn a_bare_tcp_listener_is_not_a_peer() {
    // Accepts TCP connections but never speaks ZMTP: the handshake cannot complete.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
    let publisher = Publisher::connect(&endpoint).unwrap();
    let err = publisher
        .wait_connected(Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, PublishError::NotConnected { .. }), "{err:?}");
    drop(listener);
}

#[test]
fn events_published_before_the_bridge_starts_are_delivered_when_it_does() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publisher = Publisher::builder()
        .reconnect_ivl(Duration::from_millis(20))
        .reconnect_ivl_max(Duration::from_millis(50))
        .connect(&endpoint)
        .unwrap();
    let ids: Vec<String> = (0..5)
        .map(|i| publisher.publish("early", &i).unwrap())
        .collect();
    let peer = Peer::pull(&endpoint);
    for id in &ids {
        assert_eq!(peer.recv()[1], id.as_bytes());
    }
}

#[test]
fn readiness_follows_the_bridge_going_away_and_coming_back() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publisher = Publisher::builder()
        .reconnect_ivl(Duration::from_millis(20))
        .reconnect_ivl_max(Duration::from_millis(50))
        .connect(&endpoint)
        .unwrap();
    let peer = Peer::pull(&endpoint);
    publisher.wait_connected(WAIT).unwrap();
    drop(peer);
    eventually(WAIT, "publisher notices the peer left", || {
        !publisher.is_connected()
    });

    let peer = Peer::pull(&endpoint);
    publisher.wait_connected(WAIT).unwrap();
    let id = publisher.publish("back", &true).unwrap();
    assert_eq!(peer.recv()[1], id.as_bytes());
}

#[test]
fn close_flushes_queued_events_to_a_live_peer() {
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::connect(&peer.endpoint).unwrap();
    for i in 0..500 {
        publisher.publish("flush", &i).unwrap();
    }
    let started = Instant::now();
    publisher.close(WAIT).unwrap();
    assert!(started.elapsed() < WAIT);
    for i in 0..500 {
        assert_eq!(peer.recv()[2], i.to_string().as_bytes());
    }
}

/// A publisher whose peer has gone, holding `queued` undeliverable events.
fn publisher_with_peer_gone(queued: usize, linger: Duration) -> Publisher {
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::builder()
        .linger(linger)
        .connect(&peer.endpoint)
        .unwrap();
    publisher.wait_connected(WAIT).unwrap();
    drop(peer);
    eventually(WAIT, "publisher notices the peer left", || {
        !publisher.is_connected()
    });
    for i in 0..queued {
        publisher.publish("stuck", &i).unwrap();
    }
    publisher
}

#[test]
fn close_returns_within_the_linger_when_the_peer_is_gone() {
    let publisher = publisher_with_peer_gone(10, Duration::from_secs(30));
    let linger = Duration::from_millis(300);
    let started = Instant::now();
    let err = publisher.close(linger).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, PublishError::Unflushed { linger: l, .. } if *l == linger),
        "{err:?}"
    );
    assert!(elapsed >= Duration::from_millis(280), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1300), "{elapsed:?}");
}

#[test]
fn close_with_nothing_queued_is_immediate_even_without_a_peer() {
    let publisher = publisher_with_peer_gone(0, Duration::from_secs(30));
    let started = Instant::now();
    publisher.close(Duration::from_secs(10)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn drop_is_bounded_by_the_builder_linger() {
    let publisher = publisher_with_peer_gone(10, Duration::from_millis(200));
    let started = Instant::now();
    drop(publisher);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
}

#[test]
fn one_publisher_serves_many_threads_without_mixing_frames() {
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Arc::new(Publisher::connect(&peer.endpoint).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let publisher = Arc::clone(&publisher);
            std::thread::spawn(move || {
                for i in 0..500 {
                    let topic = format!("thread:{t}");
                    publisher.publish(&topic, &(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut next = [0usize; 4];
    for _ in 0..2000 {
        let frames = peer.recv();
        assert_eq!(frames.len(), 3);
        let topic = String::from_utf8(frames[0].clone()).unwrap();
        let t: usize = topic.strip_prefix("thread:").unwrap().parse().unwrap();
        // Each thread's events arrive whole and in that thread's order.
        assert_eq!(frames[2], (t * 1000 + next[t]).to_string().as_bytes());
        next[t] += 1;
    }
    assert_eq!(next, [500; 4]);
}

/// A peer on `endpoint` goes away and another takes its place; returns the ids the
/// new one receives after the publisher published one more event (`next`).
fn ids_after_a_peer_restart(window: usize, published: usize) -> (Vec<String>, Vec<String>) {
    let peer = Peer::pull("tcp://127.0.0.1:0");
    let endpoint = peer.endpoint.clone();
    let publisher = Publisher::builder()
        .resend_window(window)
        .connect(&endpoint)
        .unwrap();
    publisher.wait_connected(WAIT).unwrap();
    let mut ids: Vec<String> = (0..published)
        .map(|i| publisher.publish("t", &i).unwrap())
        .collect();
    for id in &ids {
        assert_eq!(peer.recv()[1], id.as_bytes());
    }
    drop(peer);
    eventually(WAIT, "the publisher saw the peer go", || {
        !publisher.is_connected()
    });
    let peer = Peer::pull(&endpoint);
    ids.push(publisher.publish("t", &"next").unwrap());
    let mut got = Vec::new();
    while peer.has_message_within(Duration::from_millis(300)) {
        got.push(String::from_utf8(peer.recv()[1].clone()).unwrap());
    }
    publisher.close(WAIT).unwrap();
    (ids, got)
}

#[test]
fn a_lost_connection_sends_the_recent_messages_again_oldest_first_before_the_next() {
    let (ids, got) = ids_after_a_peer_restart(3, 5);
    // The last three before the loss (the peer cannot know they had arrived), then
    // the new one.
    assert_eq!(got, ids[2..]);
}

#[test]
fn a_zero_resend_window_sends_nothing_again() {
    let (ids, got) = ids_after_a_peer_restart(0, 5);
    assert_eq!(got, ids[5..]);
}
