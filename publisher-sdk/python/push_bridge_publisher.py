"""Publish events to push-bridge over ZeroMQ (pyzmq).

push-bridge takes events from ZeroMQ and pushes them to browsers over WebSocket and
SSE. This module is the Python side of a publisher, a thin client with the same
behaviour as the Rust SDK (``publisher-sdk/``) and the PHP and Node clients: each
event is one ZeroMQ message of three frames ``[topic, id, data-json]``, checked
before sending with the bridge's own rules (docs/publishing.md), so an event this
module accepts is one the bridge accepts. ``publisher-sdk/vectors.json`` pins the
exact frames; ``tests/test_publisher.py`` checks them.

    from push_bridge_publisher import Publisher

    publisher = Publisher("tcp://127.0.0.1:5555")   # PUSH, connected to the bridge
    event_id = publisher.publish("package_created", {"state": "create"})
    publisher.publish("article:42", {"title": "Hello"}, id="retry-safe-id")
    publisher.close()                                # queued events get 2 s to leave
"""

import json
import math
import os
import re
import threading
import time

import zmq

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "PublishError",
    "Publisher",
    "check_id",
    "check_topic",
    "encode",
    "encode_json",
    "new_event_id",
]
__version__ = "0.1.0"

#: The bridge's default PULL endpoint (``ingress.pull``), Superdesk's and Ratchet's too.
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
#: The bridge's default ``ingress.max_message_bytes``: all three frames together.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_TOPIC_BYTES = 256
MAX_ID_BYTES = 128
#: Deepest nesting of arrays and objects the bridge's JSON parser accepts.
MAX_JSON_DEPTH = 127

# Unicode White_Space and general category Cc, exactly the characters Rust's
# char::is_whitespace / char::is_control reject in a topic: U+0000-U+0020,
# U+007F-U+00A0 (controls, NEL, no-break space) and the spaces and separators above.
_BAD_TOPIC_CHARACTER = re.compile(
    "[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
_VALID_ID = re.compile(r"[\x20-\x7e]{1,128}\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")

_TOPIC_REASONS = {
    "not_utf8": "is not valid Unicode text (it holds a lone surrogate)",
    "empty": "is empty",
    "too_long": "is longer than 256 bytes",
    "bad_character": "contains whitespace or a control character",
    "empty_segment": "has an empty segment (leading, trailing or doubled ':')",
    "wildcard": "contains '*', which only patterns may use, as a whole segment",
}


class PublishError(Exception):
    """Why a publish (or opening the publisher) failed.

    ``kind`` names the failure: ``invalid_topic`` (then ``reason`` names the topic
    rule: ``empty``, ``too_long``, ``bad_character``, ``empty_segment``,
    ``wildcard``, ``not_utf8``), ``invalid_id``, ``invalid_data``, ``too_large``
    (nothing was sent for any of these), ``queue_full`` (the bridge is down or slow:
    the event was not queued, retry later with the same id), ``connect``, ``bind``
    or ``closed``.
    """

    def __init__(self, kind, message, reason=None):
        super().__init__(message)
        self.kind = kind
        self.reason = reason


def _quoted(text):
    return json.dumps(text, ensure_ascii=False)


def check_topic(topic):
    """Raises PublishError (kind ``invalid_topic``) unless ``topic`` is a valid topic:
    1-256 bytes of UTF-8, no whitespace, no control characters, no ``*``,
    ``:``-separated non-empty segments."""
    if not isinstance(topic, str):
        raise TypeError(f"the topic must be a str, not {type(topic).__name__}")

    def refuse(reason):
        raise PublishError(
            "invalid_topic",
            f"invalid topic {_quoted(topic)}: it {_TOPIC_REASONS[reason]}",
            reason,
        )

    if _SURROGATE.search(topic):
        refuse("not_utf8")
    if not topic:
        refuse("empty")
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        refuse("too_long")
    if _BAD_TOPIC_CHARACTER.search(topic):
        refuse("bad_character")
    for segment in topic.split(":"):
        if not segment:
            refuse("empty_segment")
        if "*" in segment:
            refuse("wildcard")


def check_id(event_id):
    """Raises PublishError (kind ``invalid_id``) unless ``event_id`` is 1-128 bytes of
    printable ASCII (0x20-0x7e)."""
    if not isinstance(event_id, str):
        raise TypeError(f"the event id must be a str, not {type(event_id).__name__}")
    if not _VALID_ID.match(event_id):
        raise PublishError(
            "invalid_id",
            f"invalid event id {_quoted(event_id)}: ids must be 1-{MAX_ID_BYTES} bytes "
            "of printable ASCII",
        )


def _check_size(topic, event_id, data, limit):
    size = len(topic) + len(event_id) + len(data)
    if size > limit:
        raise PublishError(
            "too_large",
            f"the message is {size} bytes, above the {limit}-byte limit (the bridge's "
            "ingress.max_message_bytes); nothing was sent",
        )


def encode(topic, data, event_id, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
    """The three frames (bytes) of an event whose data is any JSON-serializable
    value, after checking topic, id, data and size; raises PublishError."""
    check_topic(topic)
    check_id(event_id)
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        data_frame = text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as e:
        # TypeError: no JSON form; ValueError: NaN or infinity, or a lone surrogate
        # (UnicodeEncodeError), which the bridge could not read.
        raise PublishError(
            "invalid_data", f"could not serialize the event data to JSON: {e}"
        ) from e
    frames = [topic.encode("utf-8"), event_id.encode("ascii"), data_frame]
    _check_size(*frames, max_message_bytes)
    return frames


def encode_json(topic, data_json, event_id, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
    """The three frames of an event whose data is already JSON text (str or UTF-8
    bytes), sent byte for byte once it has been checked to be one JSON value the
    bridge can parse; raises PublishError."""
    check_topic(topic)
    check_id(event_id)
    if isinstance(data_json, str):
        if _SURROGATE.search(data_json):
            raise PublishError(
                "invalid_data", "the event data is not valid JSON: it holds a lone surrogate"
            )
        data_frame = data_json.encode("utf-8")
    elif isinstance(data_json, (bytes, bytearray, memoryview)):
        data_frame = bytes(data_json)
    else:
        raise TypeError(f"data_json must be str or bytes, not {type(data_json).__name__}")
    frames = [topic.encode("utf-8"), event_id.encode("ascii"), data_frame]
    _check_size(*frames, max_message_bytes)
    _check_json(data_frame)
    return frames


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _bounded_int(text):
    # The bridge reads integers beyond 64 bits as doubles: they must fit one.
    if len(text) > 20 and not math.isfinite(float(text)):
        raise ValueError(f"number out of range: {text[:40]}...")
    return int(text)


def _check_json(data):
    """Parses as strictly as the bridge (serde_json): no NaN or infinities, numbers
    within double range, no lone surrogate escapes, at most 127 levels of nesting."""
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
        _check_parsed(value)
    except (ValueError, RecursionError) as e:
        # UnicodeDecodeError and json.JSONDecodeError are ValueErrors.
        raise PublishError("invalid_data", f"the event data is not valid JSON: {e}") from e


def _check_parsed(value):
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise ValueError("a string holds a lone surrogate escape")
        elif isinstance(value, (list, dict)):
            if depth + 1 > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


class _IdClock:
    """UUIDv7 (RFC 9562) ids: 48 bits of Unix milliseconds, then a 42-bit counter
    (12 bits of rand_a and the top 30 of rand_b) that starts at a random value each
    millisecond and counts up within it, then 32 random bits. Ids made by one process
    therefore sort, as strings, in the order they were made, even within a millisecond
    or if the clock steps back; across processes the random bits keep them unique."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0

    def _fresh_counter(self):
        # Top bit clear: room to count up within the millisecond.
        return int.from_bytes(os.urandom(6), "big") >> 7

    def next(self):
        with self._lock:
            now = time.time_ns() // 1_000_000
            if now > self._ms:
                self._ms, self._counter = now, self._fresh_counter()
            else:
                self._counter += 1
                if self._counter >= 1 << 42:
                    self._ms, self._counter = self._ms + 1, self._fresh_counter()
            ms, counter = self._ms, self._counter
        value = (
            (ms & 0xFFFF_FFFF_FFFF) << 80
            | 0x7 << 76
            | (counter >> 30) << 64
            | 0b10 << 62
            | (counter & 0x3FFF_FFFF) << 32
            | int.from_bytes(os.urandom(4), "big")
        )
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_CLOCK = _IdClock()


def new_event_id():
    """A fresh event id: a lowercase UUIDv7 (time-ordered, unique)."""
    return _CLOCK.next()


class Publisher:
    """A connection to push-bridge that publishes events.

    ``Publisher(endpoint)`` opens a PUSH socket connected to the bridge's PULL
    (``ingress.pull``); ``bind_pub=True`` binds a PUB socket instead, which bridges
    subscribe to (``ingress.sub``). Connecting succeeds while the bridge is down:
    events are queued, up to ``send_hwm`` messages, and leave when it comes back.
    A publish on a full queue waits up to ``send_timeout`` seconds, then raises
    PublishError ``queue_full``. PUB never waits: events nobody subscribed to are
    dropped. Thread-safe; usable as a context manager (closes on exit).
    """

    def __init__(
        self,
        endpoint=DEFAULT_ENDPOINT,
        *,
        bind_pub=False,
        max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
        send_hwm=1000,
        send_timeout=0.5,
        linger=2.0,
    ):
        self.max_message_bytes = max_message_bytes
        self._linger = linger
        self._lock = threading.Lock()
        self._context = zmq.Context(io_threads=1)
        try:
            self._socket = self._context.socket(zmq.PUB if bind_pub else zmq.PUSH)
            self._socket.setsockopt(zmq.SNDHWM, send_hwm)
            self._socket.setsockopt(zmq.LINGER, _millis(linger))
            if bind_pub:
                self._socket.bind(endpoint)
                self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT) or endpoint
            else:
                self._socket.setsockopt(zmq.SNDTIMEO, _millis(send_timeout))
                self._socket.setsockopt(zmq.IMMEDIATE, 0)
                self._socket.setsockopt(zmq.RECONNECT_IVL, 100)
                self._socket.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
                self._socket.connect(endpoint)
                self.endpoint = endpoint
        except zmq.ZMQError as e:
            self._context.destroy(linger=0)
            action = "bind" if bind_pub else "connect"
            raise PublishError(
                action,
                f"cannot {action} {_quoted(endpoint)}: {e} (expected e.g. "
                "tcp://127.0.0.1:5555 or ipc:///run/push-bridge.sock)",
            ) from e
        self._send_hwm = send_hwm
        self._send_timeout = send_timeout
        self._closed = False

    def publish(self, topic, data, id=None):  # noqa: A002 - the SDKs' shared name
        """Publishes ``data`` (any JSON-serializable value) on ``topic`` and returns
        the event id: ``id`` if given (retry a failed publish with the same id: the
        bridge drops duplicates), else a fresh UUIDv7."""
        event_id = new_event_id() if id is None else id
        self._send(encode(topic, data, event_id, self.max_message_bytes))
        return event_id

    def publish_json(self, topic, data_json, id=None):  # noqa: A002
        """As publish, for data that is already JSON text: checked, then sent as-is."""
        event_id = new_event_id() if id is None else id
        self._send(encode_json(topic, data_json, event_id, self.max_message_bytes))
        return event_id

    def close(self, linger=None):
        """Closes the socket, giving queued events up to ``linger`` seconds (default:
        the constructor's, 2 s) to leave; returns as soon as they have. Returns False
        when the whole linger ran out, as queued events may then have been lost.
        Closing twice does nothing (and returns True)."""
        linger = self._linger if linger is None else linger
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            started = time.monotonic()
            self._socket.close(linger=_millis(linger))
            # Terminating this publisher's own context waits for the lingering socket.
            self._context.term()
            elapsed = time.monotonic() - started
        return linger <= 0 or elapsed + 0.005 < linger

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _send(self, frames):
        with self._lock:
            if self._closed:
                raise PublishError("closed", "the publisher is closed")
            try:
                self._socket.send_multipart(frames, copy=len(frames[2]) < 65536)
            except zmq.Again as e:
                raise PublishError(
                    "queue_full",
                    f"the send queue to {self.endpoint} is full ({self._send_hwm} "
                    f"messages) and did not drain within {self._send_timeout} s: the "
                    "bridge is down or too slow; the event was not sent",
                ) from e


def _millis(seconds):
    """Seconds as the whole milliseconds ZeroMQ options take: rounded up, so a
    nonzero wait never becomes 0 (don't wait), and never negative (-1: forever)."""
    return max(0, min(math.ceil(seconds * 1000), 2**31 - 1))
