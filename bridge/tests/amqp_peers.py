#!/usr/bin/env python3
"""superdesk-core's notification producer over AMQP 0-9-1 (kombu), and a consumer of
the same fanout exchange, for the AMQP ingress tests (needs kombu: run scripts/test).

publish URL COUNT [--per-second R] [--exchange NAME] [--event NAME] [--first N]
    Publishes COUNT notifications the way superdesk-core's SocketMessageProducer sends
    push_notification()'s messages: a JSON text (a str, so kombu sends it as text/plain,
    utf-8, persistent) to the durable fanout exchange NAME (default
    superdesk_notification, superdesk-core's WEBSOCKET_EXCHANGE), declared on publish,
    through a pooled producer with retry=True, and a message-id header:
        {"event": EVENT, "extra": {"seq": n}, "_created": ISO time, "_process": pid}
    R a second (0: as fast as possible), n from FIRST (default 0).
    Unlike superdesk-core it publishes with publisher confirms (each publish waits for
    the broker's ack), so it can tell exactly what the broker took. kombu's retry
    reconnects after a broker stop or restart and publishes the same message again;
    such a message is "retried": it may have reached the broker twice (sent, then the
    connection dropped before its ack).
    Prints a line "confirmed n" as each one is acked, then one JSON line
    {"confirmed": count, "retried": [n, ...]}.

declare URL EXCHANGE QUEUE
    Declares the durable queue QUEUE bound to the durable fanout exchange EXCHANGE (as a
    consumer that must not lose messages while it is away would).

consume URL COUNT [--exchange NAME] [--quiet MS] [--timeout S]
    Declares an exclusive queue websocket_queue_<random> bound to the fanout exchange
    (as superdesk-core's SocketMessageConsumer does),
    prints "ready", then consumes (acking each) until it has COUNT messages and none
    came for MS milliseconds (default 500), or S seconds passed (default 30). Prints
    one JSON line {"received": k, "seqs": [...], "content_types": [...],
    "delivery_modes": [...]}.

Every command exits as soon as its standard input closes (the test that ran it ended).
"""
import argparse
import datetime
import json
import os
import sys
import threading
import time
import uuid

from kombu import Connection, Consumer, Exchange, Queue
from kombu.pools import producers

# Reconnect quickly: a test restarts the broker (a few seconds) while this publishes;
# give up on a message after about two minutes (a broker that never came back).
RETRY_POLICY = {"max_retries": 240, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def notification(event, seq):
    # superdesk.notification._create_socket_message: the kwargs with _created and
    # _process, json.dumps'd to a str.
    return json.dumps(
        {
            "event": event,
            "extra": {"seq": seq},
            "_created": datetime.datetime.utcnow().isoformat(),
            "_process": os.getpid(),
        }
    )


def publish(args):
    exchange = Exchange(args.exchange, type="fanout")
    # confirm_publish: py-amqp waits for the broker's basic.ack after each publish
    # (and raises on a nack).
    connection = Connection(args.url, transport_options={"confirm_publish": True}, connect_timeout=2)
    retried = []
    started = time.monotonic()
    for n in range(args.count):
        seq = args.first + n
        if args.per_second:
            wait = started + n / args.per_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)

        def on_retry(exc, interval, seq=seq):
            if not retried or retried[-1] != seq:
                retried.append(seq)

        with producers[connection].acquire(block=True) as producer:
            producer.publish(
                notification(args.event, seq),
                exchange=exchange,
                declare=[exchange],
                retry=True,
                retry_policy=dict(RETRY_POLICY, errback=on_retry),
                headers={"message-id": uuid.uuid1().hex},
            )
        print(f"confirmed {seq}", flush=True)
    connection.release()
    FINISHED.set()
    print(json.dumps({"confirmed": args.count, "retried": retried}), flush=True)


def declare(args):
    with Connection(args.url, connect_timeout=2) as connection:
        exchange = Exchange(args.exchange, type="fanout")
        Queue(args.queue, exchange=exchange, durable=True, channel=connection.channel()).declare()


def consume(args):
    exchange = Exchange(args.exchange, type="fanout")
    received = []
    with Connection(args.url, connect_timeout=2) as connection:
        channel = connection.channel()
        queue = Queue(f"websocket_queue_{uuid.uuid4().hex[:8]}", exchange=exchange, exclusive=True, channel=channel)

        def on_message(body, message):
            received.append(message)
            message.ack()

        with Consumer(channel, queues=[queue], callbacks=[on_message], accept=["text/plain", "json"]):
            print("ready", flush=True)
            deadline = time.monotonic() + args.timeout
            last = time.monotonic()
            while time.monotonic() < deadline:
                if len(received) >= args.count and time.monotonic() - last >= args.quiet / 1000:
                    break
                try:
                    connection.drain_events(timeout=0.05)
                    last = time.monotonic()
                except TimeoutError:
                    pass
    FINISHED.set()
    print(
        json.dumps(
            {
                "received": len(received),
                "seqs": [json.loads(m.body)["extra"]["seq"] for m in received],
                "content_types": sorted({m.content_type for m in received}),
                "delivery_modes": sorted({m.properties.get("delivery_mode") for m in received}),
            }
        ),
        flush=True,
    )


# Set once the work is done and its report is being printed: stdin closing then (the
# test waiting for the exit closes it) is no reason to fail.
FINISHED = threading.Event()


def exit_with_parent():
    # The test holds this process's stdin open; it closes when the test ends, however
    # it ends (a killed test runs no Drop), and then this process must not go on.
    def watch():
        sys.stdin.read()
        os._exit(0 if FINISHED.is_set() else 3)

    threading.Thread(target=watch, daemon=True).start()


def main():
    exit_with_parent()
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("publish")
    p.add_argument("url")
    p.add_argument("count", type=int)
    p.add_argument("--per-second", type=float, default=0)
    p.add_argument("--exchange", default="superdesk_notification")
    p.add_argument("--event", default="item:publish")
    p.add_argument("--first", type=int, default=0)
    d = commands.add_parser("declare")
    d.add_argument("url")
    d.add_argument("exchange")
    d.add_argument("queue")
    c = commands.add_parser("consume")
    c.add_argument("url")
    c.add_argument("count", type=int)
    c.add_argument("--exchange", default="superdesk_notification")
    c.add_argument("--quiet", type=int, default=500)
    c.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    {"publish": publish, "declare": declare, "consume": consume}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
