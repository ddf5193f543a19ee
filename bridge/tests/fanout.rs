//! Fan-out at scale and slow consumers, against the real binary.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Reads `count` events and checks they are `0..count` in order, once each.
async fn expect_sequence(ws: &mut Ws, count: u64) {
    for expected in 0..count {
        let event = next_json(ws).await;
        assert_eq!(event["data"]["seq"], expected, "{event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_get_a_thousand_events_each_once_in_order() {
    const CLIENTS: usize = 1000;
    const EVENTS: u64 = 1000;
    let bridge = Bridge::start();
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(native_client(&bridge, &["bulk"]).await);
    }
    let started = Instant::now();
    let publisher = bridge.publisher();
    for seq in 0..EVENTS {
        publisher.publish("bulk", &json!({"seq": seq})).unwrap();
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { expect_sequence(&mut ws, EVENTS).await }))
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{CLIENTS} clients x {EVENTS} events = {} deliveries in {elapsed:?} ({:.0}/s)",
        CLIENTS as u64 * EVENTS,
        (CLIENTS as u64 * EVENTS) as f64 / elapsed.as_secs_f64()
    );
    bridge.wait_metric(
        r#"push_bridge_events_delivered_total{protocol="native"}"#,
        (CLIENTS as u64 * EVENTS) as f64,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_4008_and_nobody_else_waits() {
    const EVENTS: u64 = 20_000;
    let bridge = Bridge::start();
    let mut stalled = native_client(&bridge, &["feed"]).await;
    let mut healthy = native_client(&bridge, &["feed"]).await;
    let reader = tokio::spawn(async move {
        expect_sequence(&mut healthy, EVENTS).await;
        (healthy, Instant::now())
    });
    // 20 MB at about 20k events/s: far more than the stalled client's socket buffers
    // and queue hold, at a pace a reading client easily keeps up with.
    let publisher = bridge.publisher();
    let padding = "x".repeat(1024);
    for seq in 0..EVENTS {
        publisher
            .publish("feed", &json!({"seq": seq, "pad": padding}))
            .unwrap();
        if seq % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let published = Instant::now();
    let (mut healthy, done) = reader.await.unwrap();
    println!(
        "healthy client had all {EVENTS} events {:?} after the last was published",
        done.saturating_duration_since(published)
    );
    bridge.wait_metric("push_bridge_slow_consumer_closes_total", 1.0);

    // The stalled client now reads: an in-order prefix, then the 4008 close.
    let mut next_seq = 0;
    let code = loop {
        match tokio::time::timeout(WAIT, stalled.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Text(text))) => {
                let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(event["data"]["seq"], next_seq);
                next_seq += 1;
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(4008));
    assert!(
        next_seq < EVENTS,
        "the stalled client cannot have received everything"
    );
    println!("stalled client got {next_seq} events before 4008");
    assert_eq!(
        bridge.metric("push_bridge_slow_consumer_closes_total"),
        1.0,
        "only the stalled one"
    );
    assert_silent(&mut healthy, Duration::from_millis(100)).await;
}
