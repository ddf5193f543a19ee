#!/usr/bin/env python3
"""libzmq (pyzmq) publishers for the ingress integration tests.

push ENDPOINT COUNT [--heartbeat MS] [--interval MS]
    Connects a PUSH socket and sends COUNT messages cycling through the three forms:
    seq % 3 == 0: one frame, the Superdesk envelope
                  {"topic":"package_created","data":{"package":{"id":seq},"state":"create"}}
    seq % 3 == 1: two frames  [b"seq", {"seq":seq}]
    seq % 3 == 2: three frames [b"seq", b"id-<seq>", {"seq":seq}]
    then closes with linger and prints one JSON line with the socket monitor's counts
    of connected / disconnected / connect-retried events.

pub ENDPOINT GEN [--interval MS]
    Binds a PUB socket, prints "bound", then publishes [b"gen", {"gen":GEN,"seq":n}]
    every MS milliseconds until killed.
"""
import argparse
import json
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message


def frames(seq):
    if seq % 3 == 0:
        body = {"topic": "package_created", "data": {"package": {"id": seq}, "state": "create"}}
        return [json.dumps(body, separators=(",", ":")).encode()]
    data = json.dumps({"seq": seq}).encode()
    if seq % 3 == 1:
        return [b"seq", data]
    return [b"seq", b"id-%d" % seq, data]


def push(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    if args.heartbeat:
        sock.setsockopt(zmq.HEARTBEAT_IVL, args.heartbeat)
    monitor = sock.get_monitor_socket()
    sock.connect(args.endpoint)
    for seq in range(args.count):
        sock.send_multipart(frames(seq))
        if args.interval:
            time.sleep(args.interval / 1000)
    sock.setsockopt(zmq.LINGER, 10000)
    sock.close()
    counts = {"connected": 0, "disconnected": 0, "retried": 0}
    names = {
        zmq.EVENT_CONNECTED: "connected",
        zmq.EVENT_DISCONNECTED: "disconnected",
        zmq.EVENT_CONNECT_RETRIED: "retried",
    }
    while monitor.poll(100):
        event = recv_monitor_message(monitor)
        name = names.get(event["event"])
        if name:
            counts[name] += 1
    monitor.close(linger=0)
    ctx.term()
    print(json.dumps(counts), flush=True)


def publish(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(args.endpoint)
    print("bound", flush=True)
    seq = 0
    while True:
        sock.send_multipart([b"gen", json.dumps({"gen": args.gen, "seq": seq}).encode()])
        seq += 1
        time.sleep(args.interval / 1000)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("push")
    p.add_argument("endpoint")
    p.add_argument("count", type=int)
    p.add_argument("--heartbeat", type=int, default=0)
    p.add_argument("--interval", type=float, default=0)
    p = sub.add_parser("pub")
    p.add_argument("endpoint")
    p.add_argument("gen", type=int)
    p.add_argument("--interval", type=float, default=10)
    args = parser.parse_args()
    {"push": push, "pub": publish}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
