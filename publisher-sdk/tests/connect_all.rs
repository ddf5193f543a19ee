//! `Publisher::connect_all` (one PUSH socket, several PULL peers) against real libzmq
//! peers on loopback: round-robin over the connected peers only, readiness meaning "at
//! least one", and the resend window going out again to the remaining peers when one
//! goes away.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use push_bridge_publisher::{PublishError, Publisher};
use support::{eventually, free_port, Peer};

const WAIT: Duration = Duration::from_secs(5);

/// The ids of every message `peer` receives until it has been quiet for `quiet`
/// (at most 100 000: a bound on the loop).
fn drain_ids(peer: &Peer, quiet: Duration) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < 100_000 && peer.has_message_within(quiet) {
        ids.push(String::from_utf8(peer.recv()[1].clone()).unwrap());
    }
    ids
}

#[test]
fn deals_round_robin_to_every_peer_and_with_one_endpoint_is_connect() {
    let a = Peer::pull("tcp://127.0.0.1:0");
    let b = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::connect_all(&[&a.endpoint, &b.endpoint]).unwrap();
    assert_eq!(
        publisher.endpoint(),
        format!("{},{}", a.endpoint, b.endpoint)
    );
    // Both handshakes done, so the round-robin covers both.
    eventually(WAIT, "connected", || publisher.is_connected());
    // Both handshakes done (a peer not connected yet gets nothing).
    std::thread::sleep(Duration::from_millis(300));
    let sent: Vec<String> = (0..100)
        .map(|i| publisher.publish("rr", &i).unwrap())
        .collect();
    let mut got = drain_ids(&a, Duration::from_millis(300));
    let from_a = got.len();
    got.extend(drain_ids(&b, Duration::from_millis(300)));
    assert_eq!(from_a, 50, "an even deal over two peers");
    got.sort();
    assert_eq!(got, sent, "every message once");
    publisher.close(WAIT).unwrap();

    // One endpoint: the single-peer publisher, queueing until the peer is there.
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publisher = Publisher::builder()
        .reconnect_ivl(Duration::from_millis(20))
        .connect_all(&[&endpoint])
        .unwrap();
    assert_eq!(publisher.endpoint(), endpoint);
    let id = publisher.publish("early", &1).unwrap();
    let peer = Peer::pull(&endpoint);
    assert_eq!(peer.recv()[1], id.as_bytes());
}

#[test]
fn a_peer_that_is_down_gets_nothing_queued_the_others_get_everything() {
    let live = Peer::pull("tcp://127.0.0.1:0");
    let down = format!("tcp://127.0.0.1:{}", free_port());
    let publisher = Publisher::builder()
        .reconnect_ivl(Duration::from_millis(20))
        .reconnect_ivl_max(Duration::from_millis(50))
        .connect_all(&[&down, &live.endpoint])
        .unwrap();
    publisher.wait_connected(WAIT).unwrap();
    let sent: Vec<String> = (0..200)
        .map(|i| publisher.publish("t", &i).unwrap())
        .collect();
    assert_eq!(drain_ids(&live, Duration::from_millis(300)), sent);
    // The one that comes up late gets only what is published from then on.
    let late = Peer::pull(&down);
    std::thread::sleep(Duration::from_millis(300));
    let after: Vec<String> = (0..20)
        .map(|i| publisher.publish("t", &i).unwrap())
        .collect();
    let mut got = drain_ids(&late, Duration::from_millis(300));
    let from_late = got.len();
    got.extend(drain_ids(&live, Duration::from_millis(300)));
    got.sort();
    assert_eq!(got, after);
    assert_eq!(from_late, 10, "the late peer joined the round-robin");
    publisher.close(WAIT).unwrap();
}

#[test]
fn connected_means_at_least_one_peer() {
    let a = Peer::pull("tcp://127.0.0.1:0");
    let b = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::builder()
        .reconnect_ivl(Duration::from_millis(20))
        .reconnect_ivl_max(Duration::from_millis(50))
        .connect_all(&[&a.endpoint, &b.endpoint])
        .unwrap();
    publisher.wait_connected(WAIT).unwrap();
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    assert!(publisher.is_connected(), "b is still there");
    let id = publisher.publish("t", &"to b").unwrap();
    let got = drain_ids(&b, Duration::from_millis(300));
    assert_eq!(got.last(), Some(&id));
    drop(b);
    eventually(WAIT, "the publisher saw both go", || {
        !publisher.is_connected()
    });
}

#[test]
fn with_no_peer_at_all_publish_fails_after_the_send_timeout_and_wait_names_every_endpoint() {
    let one = format!("tcp://127.0.0.1:{}", free_port());
    let two = format!("tcp://127.0.0.1:{}", free_port());
    let publisher = Publisher::builder()
        .send_timeout(Duration::from_millis(100))
        .linger(Duration::ZERO)
        .connect_all(&[&one, &two])
        .unwrap();
    let started = Instant::now();
    let err = publisher.publish("t", &1).unwrap_err();
    assert!(matches!(err, PublishError::QueueFull { .. }), "{err:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let err = publisher
        .wait_connected(Duration::from_millis(100))
        .unwrap_err();
    assert!(err.to_string().contains(&format!("{one},{two}")), "{err}");
}

/// Two peers take 20 messages; one goes away; the next publish sends the 20 again to
/// the one left (the publisher cannot tell which the lost peer had received), oldest
/// first, and once the moment after the loss has passed, sends them, and what went out
/// in that moment, once more.
#[test]
fn when_one_peer_goes_away_the_window_goes_again_to_the_others() {
    let a = Peer::pull("tcp://127.0.0.1:0");
    let b = Peer::pull("tcp://127.0.0.1:0");
    let publisher = Publisher::builder()
        .resend_window(100)
        .connect_all(&[&a.endpoint, &b.endpoint])
        .unwrap();
    eventually(WAIT, "connected", || publisher.is_connected());
    // Both handshakes done (a peer not connected yet gets nothing).
    std::thread::sleep(Duration::from_millis(300));
    let first: Vec<String> = (0..20)
        .map(|i| publisher.publish("t", &i).unwrap())
        .collect();
    let mut before = drain_ids(&a, Duration::from_millis(300));
    before.extend(drain_ids(&b, Duration::from_millis(300)));
    assert_eq!(before.len(), 20);
    drop(a);

    // Publish one probe at a time until b sees the window come again (bounded).
    let mut probes = Vec::new();
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !got.contains(&first[0]) {
        assert!(Instant::now() < deadline, "the window never came again");
        probes.push(publisher.publish("probe", &probes.len()).unwrap());
        got.extend(drain_ids(&b, Duration::from_millis(50)));
    }
    let at = got.iter().position(|id| id == &first[0]).unwrap();
    assert_eq!(got[at..at + 20], first[..], "the window, oldest first");
    // After the watch (100 ms), the next publish sends the window and what followed
    // the loss once more.
    std::thread::sleep(Duration::from_millis(150));
    let last = publisher.publish("t", &"last").unwrap();
    got.extend(drain_ids(&b, Duration::from_millis(300)));
    assert_eq!(got.last(), Some(&last));
    let times = got.iter().filter(|id| **id == first[0]).count();
    assert_eq!(times, 2, "sent again after the loss, then after the watch");
    let unique: HashSet<&String> = got.iter().collect();
    for id in first.iter().chain(&probes) {
        assert!(unique.contains(id), "{id} never reached b after the loss");
    }
    publisher.close(WAIT).unwrap();
}
