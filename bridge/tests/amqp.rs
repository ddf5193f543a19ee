//! The AMQP ingress (`[[ingress.amqp]]`, docs/superdesk.md "Publisher 2.x and
//! superdesk-core"), proven with real parts: a RabbitMQ each test starts
//! (support::rabbitmq), Superdesk Publisher 2.x's producer (PHP's `amqp` extension,
//! tests/php/amqp_pusher.php) and superdesk-core's (kombu, tests/amqp_peers.py), and
//! WAMP v1, native and SSE clients of the real binary. Every count is exact.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::cluster::{collect, next_event, Sse};
use support::rabbitmq::{
    declare_bound_queue, php_amqp_publish, KombuPublisher, RabbitMq, PUBLISHER_QUEUE,
    SUPERDESK_EXCHANGE,
};
use support::redis::metric_sum;
use support::*;

/// A bridge (generated token) reading one AMQP source: `source` is the rest of its
/// `[[ingress.amqp]]` table. It is ready once the source consumes.
fn amqp_bridge(rabbit: &RabbitMq, source: &str) -> Bridge {
    Bridge::start_with(&format!(
        "[[ingress.amqp]]\nurl = \"{}\"\n{source}\n",
        rabbit.url()
    ))
}

/// `push_bridge_amqp_acked_total` of the bridge's one source.
fn acked(bridge: &Bridge) -> f64 {
    metric_sum(bridge, "push_bridge_amqp_acked_total", &[])
}

/// The next `count` events' `extra.seq` (superdesk-core notifications).
async fn seqs_of(client: &mut Ws, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let event = next_event(client, WAIT).await;
        seqs.push(event["data"]["extra"]["seq"].as_u64().expect("seq"));
    }
    seqs
}

/// Publishes `body` as it is to `queue` through the default exchange (kombu).
fn publish_raw(rabbit: &RabbitMq, queue: &str, body: &str) {
    python(
        "import sys, kombu\n\
         with kombu.Connection(sys.argv[1], connect_timeout=5) as c:\n\
         \x20   c.Producer().publish(sys.argv[3], exchange='', routing_key=sys.argv[2], \
         content_type='application/json', content_encoding='utf-8', delivery_mode=2)\n",
        &[&rabbit.url(), queue, body],
    );
}

/// Publisher 2.x: PHP's amqp extension publishes Publisher's envelopes to
/// `swp_websocket_exchange`, bound to `swp_websocket`, which the bridge consumes. A
/// WAMP v1 client (as the Superdesk UI) and a native client get every event in order,
/// each WAMP frame byte for byte what the same envelope gives over ZeroMQ; a poison
/// message in the middle is acknowledged once, counted, and blocks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_2x_events_reach_wamp1_and_native_clients_as_over_zeromq() {
    let rabbit = RabbitMq::start();
    // The pusher declares the exchange and the queue, bound as the install guide says.
    assert_eq!(php_amqp_publish(&rabbit, 0, 0, true, 0), 0);
    let bridge = amqp_bridge(&rabbit, &format!("queue = \"{PUBLISHER_QUEUE}\""));

    let (mut wamp, _) = connect(&bridge.token_url(), &[], &[])
        .await
        .expect("WAMP v1 upgrade");
    assert_eq!(next_json(&mut wamp).await[0], 0, "WELCOME");
    send(&mut wamp, r#"[5, "package_created"]"#).await;
    let native = native_client(&bridge, &["package_created"]).await;
    let native = collect(native, 21, WAIT, Arc::new(AtomicUsize::new(0)));
    // The subscribe is in before the first event (the WELCOME came first, and the
    // bridge handles one connection's frames in order).
    tokio::time::sleep(Duration::from_millis(200)).await;

    tokio::task::block_in_place(|| {
        assert_eq!(php_amqp_publish(&rabbit, 10, 0, true, 0), 10);
        publish_raw(&rabbit, PUBLISHER_QUEUE, "{not json");
        assert_eq!(php_amqp_publish(&rabbit, 10, 0, true, 10), 10);
    });
    // The same envelope over ZeroMQ, as Publisher 1.x sends it.
    let push = zmq::Context::new().socket(zmq::PUSH).unwrap();
    push.connect(&bridge.zmq).unwrap();
    push.send(
        r#"{"topic":"package_created","data":{"package":{"id":20},"state":"create"}}"#,
        0,
    )
    .unwrap();

    for n in 0..21 {
        let frame = tokio::time::timeout(WAIT, next_text(&mut wamp))
            .await
            .unwrap_or_else(|_| panic!("WAMP event {n} did not come"));
        assert_eq!(
            frame,
            format!(r#"[8,"package_created",{{"package":{{"id":{n}}},"state":"create"}}]"#),
            "event {n}: the same bytes whichever way it came"
        );
    }
    assert_silent(&mut wamp, Duration::from_millis(300)).await;
    let (mut native, events) = native.await.expect("native client");
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["data"]["package"]["id"].as_u64().expect("package id"))
        .collect();
    assert_eq!(ids, (0..21).collect::<Vec<_>>());
    assert_silent(&mut native, Duration::from_millis(300)).await;

    wait_until(WAIT, "every AMQP message acknowledged", || {
        acked(&bridge) == 21.0
    });
    assert_eq!(rabbit.queue_depth(PUBLISHER_QUEUE), 0, "nothing requeued");
    assert_eq!(
        metric_sum(
            &bridge,
            "push_bridge_ingress_rejected_total",
            &[("reason", "bad_json")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &bridge,
            "push_bridge_ingress_messages_total",
            &[(
                "socket",
                &format!(
                    "amqp://127.0.0.1:{}/%2f queue {PUBLISHER_QUEUE}",
                    rabbit.port
                )
            )]
        ),
        21.0
    );
    assert!(
        !bridge.stderr().contains("guest:guest"),
        "the password never reaches the log"
    );
}

/// superdesk-core: kombu publishes notifications to the fanout exchange; the bridge
/// binds a queue of its own and takes each body's `event` as the topic. A native and an
/// SSE client subscribed to `item:*` get every notification, whole, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superdesk_core_notifications_reach_native_and_sse_clients_by_their_event() {
    const COUNT: u64 = 25;
    let rabbit = RabbitMq::start();
    // The exchange exists once superdesk-core has published (or declared) it.
    tokio::task::block_in_place(|| {
        declare_bound_queue(&rabbit, SUPERDESK_EXCHANGE, "superdesk-ws");
    });
    let bridge = amqp_bridge(
        &rabbit,
        &format!("exchange = \"{SUPERDESK_EXCHANGE}\"\ntopic_field = \"event\""),
    );
    let native = native_client(&bridge, &["item:*"]).await;
    let native = collect(native, COUNT as usize, WAIT, Arc::new(AtomicUsize::new(0)));
    let mut sse = tokio::task::block_in_place(|| Sse::open(&bridge, "topic=item:*", None));

    let report = tokio::task::block_in_place(|| {
        KombuPublisher::spawn(&rabbit, COUNT, 0).finish(Duration::from_secs(30))
    });
    assert_eq!(report.confirmed, COUNT);
    assert!(report.retried.is_empty(), "{report:?}");

    let check = |frame: &Value, n: u64| {
        assert_eq!(frame["topic"], "item:publish", "{frame}");
        let data = &frame["data"];
        assert_eq!(data["event"], "item:publish", "{frame}");
        assert_eq!(data["extra"]["seq"], n, "{frame}");
        assert!(
            data["_created"].is_string() && data["_process"].is_u64(),
            "{frame}"
        );
    };
    let (mut native, events) = native.await.expect("native client");
    for (n, event) in (0..COUNT).zip(&events) {
        check(event, n);
    }
    assert_silent(&mut native, Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| {
        for n in 0..COUNT {
            check(&sse.next().frame(), n);
        }
        sse.assert_silent(Duration::from_millis(300));
    });
    // superdesk-core's own consumers are not robbed: the fanout gave them a copy too.
    assert_eq!(rabbit.queue_depth("superdesk-ws"), COUNT);
    wait_until(WAIT, "every notification acknowledged", || {
        acked(&bridge) == COUNT as f64
    });
}

/// The broker stopped and started again while superdesk-core publishes 20 a second:
/// the bridge reconnects by itself, its clients stay connected, `/readyz` says the
/// source is down meanwhile, and every message RabbitMQ kept is delivered once. What
/// RabbitMQ kept is counted by a witness queue bound to the same fanout exchange: it
/// holds exactly the copies the bridge's queue got (a message kombu sent again after
/// the connection dropped may be there twice, as the producer's retry made it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_steady_publishing_loses_and_repeats_nothing_it_kept() {
    const COUNT: u64 = 300;
    let mut rabbit = RabbitMq::start();
    tokio::task::block_in_place(|| {
        declare_bound_queue(&rabbit, SUPERDESK_EXCHANGE, "bridge");
        declare_bound_queue(&rabbit, SUPERDESK_EXCHANGE, "witness");
    });
    let bridge = amqp_bridge(&rabbit, "queue = \"bridge\"\ntopic_field = \"event\"");
    let mut client = native_client(&bridge, &["item:*"]).await;

    let publisher = KombuPublisher::spawn(&rabbit, COUNT, 20);
    let mut seqs = seqs_of(&mut client, 60).await;

    tokio::task::block_in_place(|| {
        rabbit.stop();
        let (status, body) = http_get(bridge.addr, "/readyz").expect("GET /readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("\nsource down: amqp://127.0.0.1:"), "{body}");
        std::thread::sleep(Duration::from_secs(1));
        rabbit.start_again();
        wait_until(WAIT, "the source consuming again", || {
            http_get(bridge.addr, "/readyz").is_ok_and(|(status, _)| status == 200)
        });
    });
    let report = tokio::task::block_in_place(move || publisher.finish(Duration::from_secs(60)));
    assert_eq!(report.confirmed, COUNT);

    let kept = tokio::task::block_in_place(|| rabbit.queue_depth("witness")) as usize;
    assert!(kept >= COUNT as usize, "the witness holds {kept}");
    seqs.extend(seqs_of(&mut client, kept - seqs.len()).await);
    assert_silent(&mut client, Duration::from_millis(500)).await;

    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    for seq in &seqs {
        *copies.entry(*seq).or_default() += 1;
    }
    assert_eq!(
        copies.keys().copied().collect::<Vec<_>>(),
        (0..COUNT).collect::<Vec<_>>(),
        "every notification arrived"
    );
    for (seq, n) in &copies {
        assert!(
            *n == 1 || (*n == 2 && report.retried.contains(seq)),
            "{seq} arrived {n} times (retried by the producer: {:?})",
            report.retried
        );
    }
    eprintln!(
        "broker restart: {} confirmed, {kept} kept (witness), {} delivered, retried {:?}, reconnects {}",
        report.confirmed,
        seqs.len(),
        report.retried,
        metric_sum(&bridge, "push_bridge_amqp_connects_total", &[])
    );
    assert_eq!(
        metric_sum(&bridge, "push_bridge_amqp_connects_total", &[]),
        2.0
    );
    wait_until(WAIT, "the bridge's queue drained", || {
        rabbit.queue_depth("bridge") == 0
    });
}

/// With `[cluster]`, a message is acknowledged only once its event is in the cluster's
/// log: while Redis is down the bridge holds the messages it received, unacknowledged
/// (the broker would deliver them again if the bridge died), its clients get nothing;
/// once Redis is back every one is appended, delivered once and acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustered_messages_are_acknowledged_only_once_in_the_log() {
    const COUNT: u64 = 50;
    let mut redis = support::redis::RedisServer::start();
    let rabbit = RabbitMq::start();
    assert_eq!(php_amqp_publish(&rabbit, 0, 0, true, 0), 0);
    let nodes = support::redis::start_nodes(
        &redis,
        "amqp",
        1,
        &format!(
            "[[ingress.amqp]]\nurl = \"{}\"\nqueue = \"{PUBLISHER_QUEUE}\"\n",
            rabbit.url()
        ),
    );
    let bridge = &nodes[0];
    let mut client = native_client(bridge, &["package_created"]).await;

    tokio::task::block_in_place(|| {
        redis.stop();
        let answer = support::redis::wait_readyz(bridge, 503, WAIT);
        assert!(answer.contains("log unreachable"), "{answer}");
        assert_eq!(php_amqp_publish(&rabbit, COUNT, 0, true, 0), COUNT);
        wait_until(WAIT, "the bridge holding every message", || {
            unacknowledged(&rabbit, PUBLISHER_QUEUE) == COUNT
        });
    });
    assert_silent(&mut client, Duration::from_millis(500)).await;
    assert_eq!(
        acked(bridge),
        0.0,
        "nothing acknowledged before it is in the log"
    );
    assert_eq!(rabbit.queue_depth(PUBLISHER_QUEUE), COUNT);

    tokio::task::block_in_place(|| {
        redis.start_again();
        support::redis::wait_readyz(bridge, 200, WAIT);
    });
    for n in 0..COUNT {
        let event = next_event(&mut client, WAIT).await;
        assert_eq!(event["data"]["package"]["id"], n, "{event}");
    }
    assert_silent(&mut client, Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| {
        wait_until(WAIT, "every message acknowledged", || {
            acked(bridge) == COUNT as f64
        });
        assert_eq!(rabbit.queue_depth(PUBLISHER_QUEUE), 0);
        assert_eq!(
            metric_sum(bridge, "push_bridge_cluster_appended_total", &[]),
            COUNT as f64
        );
    });
}

/// Messages of `queue` delivered and not yet acknowledged.
fn unacknowledged(rabbit: &RabbitMq, queue: &str) -> u64 {
    let listing = rabbit.ctl(&["list_queues", "-q", "name", "messages_unacknowledged"]);
    listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(name, _)| *name == queue)
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A bridge stopped (SIGTERM) while Publisher publishes 200 a second: it stops
/// consuming first, gives its clients what it took in, acknowledges exactly that and
/// closes; everything else waits in the queue for the next bridge, which delivers it:
/// the two clients together get every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_bridge_acknowledges_what_it_took_in_and_the_next_one_goes_on() {
    const COUNT: u64 = 400;
    let rabbit = Arc::new(RabbitMq::start());
    assert_eq!(php_amqp_publish(&rabbit, 0, 0, true, 0), 0);
    let source = format!("queue = \"{PUBLISHER_QUEUE}\"");
    let mut first = amqp_bridge(&rabbit, &source);
    let mut client = native_client(&first, &["package_created"]).await;
    let publishing = std::thread::spawn({
        let rabbit = Arc::clone(&rabbit);
        move || php_amqp_publish(&rabbit, COUNT, 200, true, 0)
    });

    let mut ids = Vec::new();
    while ids.len() < 100 {
        ids.push(package_id(&next_event(&mut client, WAIT).await));
    }
    first.signal("TERM");
    // What the bridge took in comes before the close.
    loop {
        match tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut client)).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                ids.push(package_id(&serde_json::from_str(&text).expect("JSON")));
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) | Ok(None) => break,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => break,
            Err(_) => panic!("the drained client was never closed"),
        }
    }
    let taken = ids.len() as u64;
    let mut rabbit = tokio::task::block_in_place(|| {
        let status = first.wait_exit(WAIT);
        assert!(status.success(), "{status}");
        assert_eq!(publishing.join().expect("publisher"), COUNT);
        let mut rabbit = Arc::try_unwrap(rabbit).unwrap_or_else(|_| panic!("one owner"));
        assert_eq!(unacknowledged(&rabbit, PUBLISHER_QUEUE), 0);
        assert_eq!(
            rabbit.queue_depth(PUBLISHER_QUEUE),
            COUNT - taken,
            "the stopped bridge acknowledged exactly the {taken} it delivered"
        );
        // The next bridge's client subscribes before that bridge can consume.
        rabbit.stop();
        rabbit
    });

    let second = amqp_bridge_starting(&rabbit, &source);
    let mut client = native_client(&second, &["package_created"]).await;
    tokio::task::block_in_place(|| rabbit.start_again());
    while (ids.len() as u64) < COUNT {
        ids.push(package_id(&next_event(&mut client, WAIT).await));
    }
    assert_silent(&mut client, Duration::from_millis(500)).await;
    assert_eq!(
        ids,
        (0..COUNT).collect::<Vec<_>>(),
        "the first bridge took {taken}"
    );
    eprintln!(
        "drain: the first bridge delivered {taken}, the second {}",
        COUNT - taken
    );
}

/// As [`amqp_bridge`], for a broker that is down: returns once the bridge serves
/// (`/readyz` says `source down` until the broker is back).
fn amqp_bridge_starting(rabbit: &RabbitMq, source: &str) -> Bridge {
    let bridge = amqp_bridge(rabbit, source);
    let (status, body) = http_get(bridge.addr, "/readyz").expect("GET /readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\nsource down: "), "{body}");
    bridge
}

fn package_id(event: &Value) -> u64 {
    assert_eq!(event["type"], "event", "{event}");
    event["data"]["package"]["id"].as_u64().expect("package id")
}
