"""Tests of push_bridge_publisher: the cross-language vectors (publisher-sdk/vectors.json),
ids, and real sockets on loopback (a pyzmq PULL or SUB standing in for the bridge).
Run from publisher-sdk/python: python3 -m unittest discover -s tests"""

import json
import os
import re
import sys
import threading
import time
import unittest
import uuid

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import push_bridge_publisher as pbp  # noqa: E402
from push_bridge_publisher import PublishError, Publisher  # noqa: E402

VECTORS_PATH = os.path.join(HERE, "..", "..", "vectors.json")
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
WAIT_MS = 5000


def load_vectors():
    with open(VECTORS_PATH, encoding="utf-8") as f:
        return json.load(f)


def expected(case):
    frames = [bytes.fromhex(h) for h in case["frames_hex"]]
    assert frames == [t.encode("utf-8") for t in case["frames"]], case["name"]
    return frames


class VectorTests(unittest.TestCase):
    vectors = load_vectors()

    def test_encode_vectors(self):
        self.assertGreater(len(self.vectors["encode"]), 10)
        for case in self.vectors["encode"]:
            with self.subTest(case["name"]):
                frames = pbp.encode(case["topic"], case["data"], case["id"])
                self.assertEqual(frames, expected(case))

    def test_encode_json_vectors(self):
        self.assertGreater(len(self.vectors["encode_json"]), 3)
        for case in self.vectors["encode_json"]:
            with self.subTest(case["name"]):
                frames = pbp.encode_json(case["topic"], case["data_json"], case["id"])
                self.assertEqual(frames, expected(case))
                as_bytes = pbp.encode_json(case["topic"], case["data_json"].encode(), case["id"])
                self.assertEqual(as_bytes, expected(case))

    def test_reject_vectors(self):
        self.assertGreater(len(self.vectors["reject"]), 50)
        for case in self.vectors["reject"]:
            with self.subTest(case["name"]):
                tried = 0
                if "data_json" in case:
                    with self.assertRaises(PublishError) as raised:
                        pbp.encode_json(case["topic"], case["data_json"], case["id"])
                    self.assertEqual(raised.exception.kind, case["error"], str(raised.exception))
                    self.assertEqual(raised.exception.reason, case.get("reason"))
                    tried += 1
                if "data" in case:
                    with self.assertRaises(PublishError) as raised:
                        pbp.encode(case["topic"], case["data"], case["id"])
                    self.assertEqual(raised.exception.kind, case["error"], str(raised.exception))
                    self.assertEqual(raised.exception.reason, case.get("reason"))
                    tried += 1
                self.assertGreater(tried, 0)

    def test_limit_vectors(self):
        for case in self.vectors["limits"]:
            with self.subTest(case["name"]):
                limit = case.get("max_message_bytes", self.vectors["max_message_bytes"])
                if "data_json" in case:
                    call = lambda: pbp.encode_json(case["topic"], case["data_json"], case["id"], limit)  # noqa: E731
                else:
                    data = "x" * case["data_x"]
                    call = lambda: pbp.encode(case["topic"], data, case["id"], limit)  # noqa: E731
                if case["ok"]:
                    self.assertEqual(sum(map(len, call())), case["size"])
                else:
                    with self.assertRaises(PublishError) as raised:
                        call()
                    self.assertEqual(raised.exception.kind, "too_large")
                    self.assertIn(f"{case['size']} bytes, above the {limit}-byte limit",
                                  str(raised.exception))

    def test_default_limit_matches_the_vectors(self):
        self.assertEqual(pbp.DEFAULT_MAX_MESSAGE_BYTES, self.vectors["max_message_bytes"])


class LanguageSpecificRefusals(unittest.TestCase):
    """Inputs a JSON vector cannot carry: values Python has and JSON has not."""

    def refused(self, call, kind, reason=None):
        with self.assertRaises(PublishError) as raised:
            call()
        self.assertEqual(raised.exception.kind, kind, str(raised.exception))
        self.assertEqual(raised.exception.reason, reason)
        return str(raised.exception)

    def test_unserializable_data(self):
        for data in [float("nan"), float("inf"), [float("-inf")], {"a": {1, 2}}, b"bytes",
                     object(), "lone \ud800 surrogate", {"\udc00": 1}]:
            with self.subTest(repr(data)):
                message = self.refused(lambda: pbp.encode("t", data, "i"), "invalid_data")
                self.assertIn("could not serialize the event data to JSON", message)

    def test_lone_surrogates_in_topic_and_json_text(self):
        self.refused(lambda: pbp.encode("a\ud800", 1, "i"), "invalid_topic", "not_utf8")
        self.refused(lambda: pbp.encode_json("t", '"\ud800"', "i"), "invalid_data")
        self.refused(lambda: pbp.encode_json("t", b'"\xff"', "i"), "invalid_data")

    def test_wrong_types_are_type_errors(self):
        with self.assertRaises(TypeError):
            pbp.encode(b"topic", 1, "i")
        with self.assertRaises(TypeError):
            pbp.encode("t", 1, 42)
        with self.assertRaises(TypeError):
            pbp.encode_json("t", 1, "i")

    def test_deep_native_data_is_not_a_crash(self):
        deep = []
        for _ in range(100_000):
            deep = [deep]
        self.refused(lambda: pbp.encode("t", deep, "i"), "invalid_data")
        text = "[" * 100_000 + "]" * 100_000
        self.refused(lambda: pbp.encode_json("t", text, "i"), "invalid_data")

    def test_messages_name_the_problem(self):
        message = self.refused(lambda: pbp.encode("a b", 1, "i"), "invalid_topic", "bad_character")
        self.assertEqual(message, 'invalid topic "a b": it contains whitespace or a control character')
        message = self.refused(lambda: pbp.encode("t", 1, ""), "invalid_id")
        self.assertIn("1-128 bytes of printable ASCII", message)


class IdTests(unittest.TestCase):
    def test_ids_are_uuidv7_text_with_the_current_time(self):
        before = time.time_ns() // 1_000_000
        event_id = pbp.new_event_id()
        after = time.time_ns() // 1_000_000
        self.assertRegex(event_id, UUID7)
        parsed = uuid.UUID(event_id)
        self.assertEqual(parsed.version, 7)
        self.assertEqual(parsed.variant, uuid.RFC_4122)
        self.assertTrue(before <= parsed.int >> 80 <= after)
        pbp.check_id(event_id)

    def test_ids_strictly_increase_even_within_a_millisecond(self):
        ids = [pbp.new_event_id() for _ in range(20_000)]
        for a, b in zip(ids, ids[1:]):
            self.assertLess(a, b)

    def test_ids_from_several_threads_are_unique(self):
        results = [[] for _ in range(4)]

        def make(out):
            out.extend(pbp.new_event_id() for _ in range(5_000))

        threads = [threading.Thread(target=make, args=(r,)) for r in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len({i for r in results for i in r}), 20_000)


class SocketTests(unittest.TestCase):
    def setUp(self):
        self.context = zmq.Context()

    def tearDown(self):
        self.context.destroy(linger=0)

    def pull(self):
        socket = self.context.socket(zmq.PULL)
        socket.setsockopt(zmq.RCVTIMEO, WAIT_MS)
        socket.bind("tcp://127.0.0.1:*")
        self.addCleanup(socket.close, 0)
        return socket, socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def test_push_sends_exactly_the_vector_frames(self):
        peer, endpoint = self.pull()
        with Publisher(endpoint) as publisher:
            for case in load_vectors()["encode"][:5]:
                self.assertEqual(publisher.publish(case["topic"], case["data"], id=case["id"]), case["id"])
                self.assertEqual(peer.recv_multipart(), expected(case))
            event_id = publisher.publish("news:sport", {"score": [2, 1]})
            self.assertRegex(event_id, UUID7)
            self.assertEqual(peer.recv_multipart(), [b"news:sport", event_id.encode(), b'{"score":[2,1]}'])
            event_id = publisher.publish_json("t", '{ "a" : 1 }')
            self.assertEqual(peer.recv_multipart(), [b"t", event_id.encode(), b'{ "a" : 1 }'])

    def test_a_refused_event_sends_nothing(self):
        peer, endpoint = self.pull()
        with Publisher(endpoint) as publisher:
            with self.assertRaises(PublishError):
                publisher.publish("news:*", 1)
            publisher.publish("after", 1, id="x")
            self.assertEqual(peer.recv_multipart()[0], b"after")

    def test_pub_binds_and_subscribers_receive(self):
        publisher = Publisher("tcp://127.0.0.1:*", bind_pub=True)
        self.assertRegex(publisher.endpoint, r"^tcp://127\.0\.0\.1:\d+$")
        sub = self.context.socket(zmq.SUB)
        self.addCleanup(sub.close, 0)
        sub.connect(publisher.endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"news")
        # A PUB drops what it sends before the subscription arrives: probe until one lands.
        deadline = time.monotonic() + WAIT_MS / 1000
        while not sub.poll(20):
            self.assertLess(time.monotonic(), deadline, "the SUB never received a probe")
            publisher.publish("news:probe", 0)
        sub.recv_multipart()
        while sub.poll(50):
            sub.recv_multipart()
        event_id = publisher.publish("news:world", {"n": 1})
        publisher.publish("other", 2)
        self.assertEqual(sub.recv_multipart(), [b"news:world", event_id.encode(), b'{"n":1}'])
        self.assertFalse(sub.poll(100), "filtered by prefix")
        self.assertTrue(publisher.close())

    def test_a_full_queue_fails_after_the_send_timeout(self):
        publisher = Publisher("tcp://127.0.0.1:1", send_hwm=2, send_timeout=0.05, linger=0)
        started = time.monotonic()
        with self.assertRaises(PublishError) as raised:
            for i in range(100):
                publisher.publish("t", i)
        elapsed = time.monotonic() - started
        self.assertEqual(raised.exception.kind, "queue_full")
        self.assertIn("is full (2 messages)", str(raised.exception))
        self.assertTrue(0.045 <= elapsed < 2, elapsed)
        self.assertTrue(publisher.close())

    def test_close_is_bounded_and_reports_unflushed_events(self):
        publisher = Publisher("tcp://127.0.0.1:1")
        publisher.publish("t", 1)
        started = time.monotonic()
        self.assertFalse(publisher.close(linger=0.2), "nobody took the queued event")
        self.assertTrue(0.19 <= time.monotonic() - started < 2)
        self.assertTrue(publisher.close(), "closing twice does nothing")
        with self.assertRaises(PublishError) as raised:
            publisher.publish("t", 1)
        self.assertEqual(raised.exception.kind, "closed")

    def test_close_returns_once_delivered(self):
        peer, endpoint = self.pull()
        publisher = Publisher(endpoint)
        publisher.publish("t", 1)
        started = time.monotonic()
        self.assertTrue(publisher.close(linger=5))
        self.assertLess(time.monotonic() - started, 4)
        self.assertEqual(peer.recv_multipart()[0], b"t")

    def test_bad_endpoints_are_clear_errors(self):
        with self.assertRaises(PublishError) as raised:
            Publisher("bogus://x")
        self.assertEqual(raised.exception.kind, "connect")
        self.assertIn('"bogus://x"', str(raised.exception))
        with self.assertRaises(PublishError) as raised:
            Publisher("tcp://192.0.2.1:5556", bind_pub=True)
        self.assertEqual(raised.exception.kind, "bind")


if __name__ == "__main__":
    unittest.main()
