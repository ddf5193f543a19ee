//! The AMQP test harness itself (support/rabbitmq.rs), no bridge involved: a private
//! RabbitMQ starts, keeps durable queues and persistent messages across a clean stop,
//! leaves no process behind, and the two Superdesk producers publish what the bridge's
//! AMQP ingress will read. Needs rabbitmq-server, php-amqp and kombu (scripts/test).

mod support;

use std::time::Duration;

use support::rabbitmq::{
    declare_bound_queue, php_amqp_publish, KombuConsumer, KombuPublisher, RabbitMq,
    PUBLISHER_QUEUE, SUPERDESK_EXCHANGE,
};
use support::{wait_until, WAIT};

/// Whether process `pid` still exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

#[test]
fn publisher_messages_wait_in_the_durable_queue_across_a_clean_restart() {
    let mut rabbit = RabbitMq::start();
    assert_eq!(php_amqp_publish(&rabbit, 10, 0, true, 0), 10);
    assert_eq!(rabbit.queue_depth(PUBLISHER_QUEUE), 10);
    // Transient ones (the bundle's default) are in the queue too, until a restart.
    assert_eq!(php_amqp_publish(&rabbit, 3, 0, false, 10), 3);
    assert_eq!(rabbit.queue_depth(PUBLISHER_QUEUE), 13);

    rabbit.stop();
    assert!(!rabbit.is_running());
    rabbit.start_again();
    assert_eq!(rabbit.queue_depth(PUBLISHER_QUEUE), 10);
    let bindings = rabbit.ctl(&[
        "list_bindings",
        "--silent",
        "--no-table-headers",
        "source_name",
        "destination_name",
        "routing_key",
    ]);
    assert!(
        bindings
            .lines()
            .any(|line| line == "swp_websocket_exchange\tswp_websocket\t"),
        "the install guide's binding (routing key \"\") survives:\n{bindings}"
    );

    // Dropped: the whole process group goes (not checked through the AMQP port: once
    // free, a test running beside this one may take it).
    let beam = rabbit.server_pid().expect("the node wrote its pid file");
    assert!(alive(beam));
    let group = rabbit.process_group().expect("the broker runs");
    assert!(group_alive(group));
    drop(rabbit);
    wait_until(WAIT, "the Erlang VM to be gone", || !alive(beam));
    wait_until(WAIT, "its process group to be gone", || !group_alive(group));
}

/// Whether any process of group `group` is left (`kill -0 -- -group`).
fn group_alive(group: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", "--", &format!("-{group}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn kombu_fanout_reaches_a_bound_queue_exactly_once_each() {
    let rabbit = RabbitMq::start();
    let consumer = KombuConsumer::start(&rabbit, SUPERDESK_EXCHANGE, 25);
    let report = KombuPublisher::spawn(&rabbit, 25, 0).finish(Duration::from_secs(20));
    assert_eq!(report.confirmed, 25);
    assert!(report.retried.is_empty(), "{report:?}");

    let consumed = consumer.finish();
    assert_eq!(consumed.received, 25);
    assert_eq!(consumed.seqs, (0..25).collect::<Vec<u64>>());
    // superdesk-core publishes its JSON as a str: kombu sends it as text, persistent.
    assert_eq!(consumed.content_types, ["text/plain"]);
    assert_eq!(consumed.delivery_modes, [2]);
}

#[test]
fn kombu_publisher_goes_on_through_a_broker_restart() {
    let mut rabbit = RabbitMq::start();
    declare_bound_queue(&rabbit, SUPERDESK_EXCHANGE, "bridge_probe");
    let mut publisher = KombuPublisher::spawn(&rabbit, 150, 50);
    publisher.wait_confirmed(20, Duration::from_secs(10));
    rabbit.stop();
    rabbit.start_again();
    let report = publisher.finish(Duration::from_secs(60));
    assert_eq!(report.confirmed, 150);
    // The restart interrupted it (the stop came before its 150th message): it retried.
    assert!(!report.retried.is_empty(), "{report:?}");
    // Every confirmed message is in the durable queue; a retried one may be twice.
    let depth = rabbit.queue_depth("bridge_probe");
    assert!(
        (150..=150 + report.retried.len() as u64).contains(&depth),
        "bridge_probe holds {depth}, retried {:?}",
        report.retried
    );
}
