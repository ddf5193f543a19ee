// Publish events to push-bridge over ZeroMQ (npm `zeromq` v6), the Node side of a
// publisher: a thin client with the same behaviour as the Rust SDK (publisher-sdk/)
// and the Python and PHP clients. Each event is one ZeroMQ message of three frames
// [topic, id, data-json], checked before sending with the bridge's own rules
// (docs/publishing.md), so an event this module accepts is one the bridge accepts.
// publisher-sdk/vectors.json pins the exact frames; tests/publisher.test.js checks them.
//
//   const { Publisher } = require("push-bridge-publisher");
//
//   async function main() {
//     const publisher = new Publisher("tcp://127.0.0.1:5555");
//     const id = await publisher.publish("package_created", { state: "create" });
//     await publisher.close();
//   }
//
// (README.md has the whole example; bridge/tests/sdk_readmes.rs runs it.)
"use strict";

const crypto = require("node:crypto");
const zmq = require("zeromq");

/** The bridge's default PULL endpoint (`ingress.pull`), Superdesk's and Ratchet's too. */
const DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555";
/** The bridge's default `ingress.max_message_bytes`: all three frames together. */
const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const MAX_TOPIC_BYTES = 256;
const MAX_ID_BYTES = 128;
/** Deepest nesting of arrays and objects the bridge's JSON parser accepts. */
const MAX_JSON_DEPTH = 127;

// Unicode White_Space and general category Cc, exactly the characters Rust's
// char::is_whitespace / char::is_control reject in a topic.
const BAD_TOPIC_CHARACTER =
  /[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const VALID_ID = /^[\x20-\x7e]{1,128}$/;

const TOPIC_REASONS = {
  not_utf8: "is not valid Unicode text (it holds a lone surrogate)",
  empty: "is empty",
  too_long: `is longer than ${MAX_TOPIC_BYTES} bytes`,
  bad_character: "contains whitespace or a control character",
  empty_segment: "has an empty segment (leading, trailing or doubled ':')",
  wildcard: "contains '*', which only patterns may use, as a whole segment",
};

/**
 * Why a publish (or opening the publisher) failed. `kind` names the failure:
 * `invalid_topic` (then `reason` names the topic rule: empty, too_long,
 * bad_character, empty_segment, wildcard, not_utf8), `invalid_id`, `invalid_data`,
 * `too_large` (nothing was sent for any of these), `queue_full` (the bridge is down or
 * slow: the event was not queued, retry later with the same id), `connect`, `bind`,
 * `send` or `closed`.
 */
class PublishError extends Error {
  constructor(kind, message, reason = null, cause = undefined) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "PublishError";
    this.kind = kind;
    this.reason = reason;
  }
}

/**
 * Throws PublishError (kind `invalid_topic`) unless `topic` is a valid topic: 1-256
 * bytes of UTF-8, no whitespace, no control characters, no `*`, `:`-separated
 * non-empty segments.
 */
function checkTopic(topic) {
  if (typeof topic !== "string") {
    throw new TypeError(`the topic must be a string, not ${typeof topic}`);
  }
  const refuse = (reason) => {
    throw new PublishError(
      "invalid_topic",
      `invalid topic ${JSON.stringify(topic)}: it ${TOPIC_REASONS[reason]}`,
      reason,
    );
  };
  if (!topic.isWellFormed()) refuse("not_utf8");
  if (topic === "") refuse("empty");
  if (Buffer.byteLength(topic, "utf8") > MAX_TOPIC_BYTES) refuse("too_long");
  if (BAD_TOPIC_CHARACTER.test(topic)) refuse("bad_character");
  for (const segment of topic.split(":")) {
    if (segment === "") refuse("empty_segment");
    if (segment.includes("*")) refuse("wildcard");
  }
}

/** Throws PublishError (kind `invalid_id`) unless `id` is 1-128 bytes of printable ASCII. */
function checkId(id) {
  if (typeof id !== "string") {
    throw new TypeError(`the event id must be a string, not ${typeof id}`);
  }
  if (!VALID_ID.test(id)) {
    throw new PublishError(
      "invalid_id",
      `invalid event id ${JSON.stringify(id)}: ids must be 1-${MAX_ID_BYTES} bytes of printable ASCII`,
    );
  }
}

function checkSize(frames, limit) {
  const size = frames[0].length + frames[1].length + frames[2].length;
  if (size > limit) {
    throw new PublishError(
      "too_large",
      `the message is ${size} bytes, above the ${limit}-byte limit (the bridge's ` +
        "ingress.max_message_bytes); nothing was sent",
    );
  }
}

// JSON.stringify would write NaN and infinities as null and lone surrogates as \udXXX
// escapes the bridge refuses: refuse them here instead, naming the problem.
function strictValues(key, value) {
  if (!key.isWellFormed()) throw new Error("an object key holds a lone surrogate");
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new Error(`${value} has no JSON form`);
  }
  if (typeof value === "string" && !value.isWellFormed()) {
    throw new Error("a string holds a lone surrogate");
  }
  return value;
}

/**
 * The three frames (Buffers) of an event whose data is any JSON-serializable value,
 * after checking topic, id, data and size. Serialized with JSON.stringify: note that
 * object keys that look like array indexes ("10") come first, in numeric order, and
 * that `undefined` members are left out (in arrays: null).
 */
function encode(topic, data, id, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
  checkTopic(topic);
  checkId(id);
  let json;
  try {
    json = JSON.stringify(data, strictValues);
  } catch (e) {
    throw new PublishError(
      "invalid_data",
      `could not serialize the event data to JSON: ${e.message}`,
      null,
      e,
    );
  }
  if (json === undefined) {
    throw new PublishError(
      "invalid_data",
      `could not serialize the event data to JSON: ${typeof data} has no JSON form`,
    );
  }
  const frames = [Buffer.from(topic, "utf8"), Buffer.from(id, "ascii"), Buffer.from(json, "utf8")];
  checkSize(frames, maxMessageBytes);
  return frames;
}

/**
 * The three frames of an event whose data is already JSON text (a string, or a Buffer
 * of UTF-8), sent byte for byte once it has been checked to be one JSON value the
 * bridge can parse.
 */
function encodeJson(topic, dataJson, id, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
  checkTopic(topic);
  checkId(id);
  let text;
  let dataFrame;
  if (typeof dataJson === "string") {
    if (!dataJson.isWellFormed()) {
      throw new PublishError("invalid_data", "the event data is not valid JSON: it holds a lone surrogate");
    }
    text = dataJson;
    dataFrame = Buffer.from(dataJson, "utf8");
  } else if (dataJson instanceof Uint8Array) {
    dataFrame = Buffer.from(dataJson);
  } else {
    throw new TypeError(`the JSON text must be a string or a Buffer, not ${typeof dataJson}`);
  }
  const frames = [Buffer.from(topic, "utf8"), Buffer.from(id, "ascii"), dataFrame];
  checkSize(frames, maxMessageBytes);
  try {
    if (text === undefined) text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(dataFrame);
    checkParsed(JSON.parse(text));
  } catch (e) {
    throw new PublishError("invalid_data", `the event data is not valid JSON: ${e.message}`, null, e);
  }
  return frames;
}

/**
 * What JSON.parse lets through that the bridge (serde_json) refuses: numbers beyond
 * a double (parsed as Infinity), lone surrogate escapes, more than 127 levels of nesting.
 */
function checkParsed(root) {
  const stack = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop();
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new Error("a number is out of range");
    } else if (typeof value === "string" && !value.isWellFormed()) {
      throw new Error("a string holds a lone surrogate escape");
    } else if (value !== null && typeof value === "object") {
      if (depth + 1 > MAX_JSON_DEPTH) throw new Error(`nested deeper than ${MAX_JSON_DEPTH} levels`);
      for (const [key, item] of Object.entries(value)) {
        if (!key.isWellFormed()) throw new Error("a key holds a lone surrogate escape");
        stack.push([item, depth + 1]);
      }
    }
  }
}

// UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 42-bit counter (12 bits of
// rand_a, the top 30 of rand_b) that starts at a random value each millisecond and
// counts up within it, then 32 random bits. Ids made by one process therefore sort,
// as strings, in the order they were made, even within a millisecond or if the clock
// steps back; across processes the random bits keep them unique.
let idMs = 0;
let idCounter = 0;
const TWO_30 = 2 ** 30;
const TWO_42 = 2 ** 42;

function freshCounter() {
  // 41 random bits (top bit clear: room to count up within the millisecond).
  const bytes = crypto.randomBytes(6);
  return Math.floor(bytes.readUIntBE(0, 6) / 128);
}

/** A fresh event id: a lowercase UUIDv7 (time-ordered, unique). */
function newEventId() {
  const now = Date.now();
  if (now > idMs) {
    idMs = now;
    idCounter = freshCounter();
  } else {
    idCounter += 1;
    if (idCounter >= TWO_42) {
      idMs += 1;
      idCounter = freshCounter();
    }
  }
  const high = Math.floor(idCounter / TWO_30);
  const low = idCounter % TWO_30;
  const hex =
    idMs.toString(16).padStart(12, "0") +
    "7" +
    high.toString(16).padStart(3, "0") +
    (0x80000000 + low).toString(16) +
    crypto.randomBytes(4).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A connection to push-bridge that publishes events.
 *
 * `new Publisher(endpoint)` opens a PUSH socket connected to the bridge's PULL
 * (`ingress.pull`); `{ bindPub: true }` binds a PUB socket instead, which bridges
 * subscribe to (`ingress.sub`): `await publisher.ready` before reading `endpoint`.
 * Connecting succeeds while the bridge is down: events are queued, up to
 * `sendHighWaterMark` messages, and leave when it comes back. A publish on a full
 * queue waits up to `sendTimeout` ms, then rejects with PublishError `queue_full`.
 * PUB never waits: events nobody subscribed to are dropped. Publishes are sent one at
 * a time, in call order.
 */
class Publisher {
  #socket;
  #queue;
  #closed = false;
  #failed = null;
  #linger;
  #sendHighWaterMark;
  #sendTimeout;

  constructor(endpoint = DEFAULT_ENDPOINT, options = {}) {
    const known = ["bindPub", "maxMessageBytes", "sendHighWaterMark", "sendTimeout", "linger"];
    const unknown = Object.keys(options).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new TypeError(`unknown Publisher option(s): ${unknown.join(", ")}`);
    const {
      bindPub = false,
      maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
      sendHighWaterMark = 1000,
      sendTimeout = 500,
      linger = 2000,
    } = options;
    this.maxMessageBytes = maxMessageBytes;
    this.endpoint = endpoint;
    this.#linger = Math.max(0, linger);
    this.#sendHighWaterMark = sendHighWaterMark;
    this.#sendTimeout = Math.max(0, sendTimeout);
    const common = { sendHighWaterMark, linger: this.#linger };
    if (bindPub) {
      this.#socket = new zmq.Publisher(common);
      this.ready = this.#socket.bind(endpoint).then(
        () => {
          this.endpoint = this.#socket.lastEndpoint || endpoint;
        },
        (e) => {
          this.#socket.close();
          this.#failed = endpointError("bind", endpoint, e);
          throw this.#failed;
        },
      );
    } else {
      this.#socket = new zmq.Push({
        ...common,
        sendTimeout: this.#sendTimeout,
        immediate: false,
        reconnectInterval: 100,
        reconnectMaxInterval: 1000,
      });
      try {
        this.#socket.connect(endpoint);
      } catch (e) {
        this.#socket.close();
        throw endpointError("connect", endpoint, e);
      }
      this.ready = Promise.resolve();
    }
    // Sends run one after another (a zeromq socket takes one send at a time), after
    // the bind. A failed bind fails every publish; it must not go unhandled meanwhile.
    this.#queue = this.ready.catch(() => {});
  }

  /**
   * Publishes `data` (any JSON-serializable value) on `topic`; resolves to the event
   * id: `id` if given (retry a failed publish with the same id: the bridge drops
   * duplicates), else a fresh UUIDv7. Invalid events reject before anything is sent.
   */
  async publish(topic, data, id = undefined) {
    const eventId = id === undefined || id === null ? newEventId() : id;
    return this.#send(encode(topic, data, eventId, this.maxMessageBytes), eventId);
  }

  /** As publish(), for data that is already JSON text: checked, then sent as-is. */
  async publishJson(topic, dataJson, id = undefined) {
    const eventId = id === undefined || id === null ? newEventId() : id;
    return this.#send(encodeJson(topic, dataJson, eventId, this.maxMessageBytes), eventId);
  }

  /**
   * Waits for pending publishes, then closes the socket. Events still queued get up
   * to `linger` ms (default: the constructor's, 2000) to leave; the process stays
   * alive that long at most to deliver them. Closing twice does nothing.
   */
  async close(linger = undefined) {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    if (this.#failed) return;
    this.#socket.linger = Math.max(0, linger ?? this.#linger);
    this.#socket.close();
  }

  #send(frames, eventId) {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#closed) {
      return Promise.reject(new PublishError("closed", "the publisher is closed"));
    }
    const sent = this.#queue.then(async () => {
      await this.ready;
      try {
        await this.#socket.send(frames);
      } catch (e) {
        if (e && e.code === "EAGAIN") {
          throw new PublishError(
            "queue_full",
            `the send queue to ${this.endpoint} is full (${this.#sendHighWaterMark} messages) ` +
              `and did not drain within ${this.#sendTimeout} ms: the bridge is down or too slow; ` +
              "the event was not sent",
            null,
            e,
          );
        }
        throw new PublishError("send", `could not send the message: ${e && e.message}`, null, e);
      }
      return eventId;
    });
    this.#queue = sent.catch(() => {});
    return sent;
  }
}

function endpointError(action, endpoint, cause) {
  return new PublishError(
    action,
    `cannot ${action} ${JSON.stringify(endpoint)}: ${cause && cause.message} ` +
      "(expected e.g. tcp://127.0.0.1:5555 or ipc:///run/push-bridge.sock)",
    null,
    cause,
  );
}

module.exports = {
  DEFAULT_ENDPOINT,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_JSON_DEPTH,
  PublishError,
  Publisher,
  checkId,
  checkTopic,
  encode,
  encodeJson,
  newEventId,
};
