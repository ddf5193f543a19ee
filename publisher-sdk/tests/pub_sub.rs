//! `Publisher::bind_pub` against real libzmq SUB sockets on loopback: the bound
//! endpoint, waiting for a subscription, prefix filtering on the topic frame.

mod support;

use std::time::Duration;

use push_bridge_publisher::{wire, PublishError, Publisher};
use support::{eventually, Peer};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn port_zero_reports_the_port_actually_bound() {
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let port: u16 = publisher
        .endpoint()
        .strip_prefix("tcp://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected endpoint {}", publisher.endpoint()));
    assert_ne!(port, 0);
}

#[test]
fn a_subscriber_gets_the_first_event_after_wait_connected() {
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let sub = Peer::sub(publisher.endpoint(), b"");
    // Waits for the subscription itself, so not even the first event is lost.
    publisher.wait_connected(WAIT).unwrap();
    let id = publisher.publish("news:sport", &[1, 2, 3]).unwrap();
    assert_eq!(
        sub.recv(),
        wire::encode("news:sport", &id, "[1,2,3]").to_vec()
    );
}

#[test]
fn sub_prefix_filters_see_the_topic() {
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let sub = Peer::sub(publisher.endpoint(), b"news:");
    publisher.wait_connected(WAIT).unwrap();
    publisher.publish("sport:results", &1).unwrap();
    let id = publisher.publish("news:world", &2).unwrap();
    assert_eq!(sub.recv(), wire::encode("news:world", &id, "2").to_vec());
    assert!(!sub.has_message_within(Duration::from_millis(100)));
}

#[test]
fn wait_connected_fails_without_subscribers() {
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let err = publisher
        .wait_connected(Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(err, PublishError::NotConnected { .. }), "{err:?}");
    // Publishing with nobody listening is not an error for PUB: the event is dropped.
    publisher.publish("t", &1).unwrap();
}

#[test]
fn readiness_ends_when_the_last_subscriber_leaves() {
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let first = Peer::sub(publisher.endpoint(), b"");
    let second = Peer::sub(publisher.endpoint(), b"");
    publisher.wait_connected(WAIT).unwrap();
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        publisher.is_connected(),
        "the second subscriber is still there"
    );
    drop(second);
    eventually(WAIT, "publisher notices no one subscribes", || {
        !publisher.is_connected()
    });
}

#[test]
fn binding_a_taken_endpoint_is_a_bind_error() {
    let first = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    let err = Publisher::bind_pub(first.endpoint()).unwrap_err();
    match &err {
        PublishError::Bind { endpoint, source } => {
            assert_eq!(endpoint, first.endpoint());
            assert_eq!(*source, zmq::Error::EADDRINUSE);
        }
        other => panic!("expected Bind, got {other:?}"),
    }
    assert!(err.to_string().contains(first.endpoint()), "{err}");
}

#[test]
fn close_without_subscribers_is_immediate() {
    let publisher = Publisher::bind_pub("tcp://127.0.0.1:0").unwrap();
    for i in 0..100 {
        publisher.publish("t", &i).unwrap();
    }
    let started = std::time::Instant::now();
    publisher.close(WAIT).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}
