// Tests of push-bridge-publisher: the cross-language vectors (publisher-sdk/vectors.json),
// ids, and real sockets on loopback (a zeromq PULL or SUB standing in for the bridge).
// Run from publisher-sdk/node: node --test tests/
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { describe, it } = require("node:test");
const zmq = require("zeromq");

const pbp = require("../push-bridge-publisher.js");
const { PublishError, Publisher } = pbp;

const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "vectors.json"), "utf8"));
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function expected(c) {
  const frames = c.frames_hex.map((h) => Buffer.from(h, "hex"));
  assert.deepEqual(frames, c.frames.map((t) => Buffer.from(t, "utf8")), `${c.name}: frames and frames_hex agree`);
  return frames;
}

function refused(call, kind, reason = null) {
  let error;
  try {
    call();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof PublishError, `expected a PublishError, got ${error}`);
  assert.equal(error.kind, kind, error.message);
  assert.equal(error.reason, reason, error.message);
  return error;
}

const withTimeout = (promise, ms, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref()),
  ]);

async function pull() {
  const socket = new zmq.Pull({ linger: 0 });
  await socket.bind("tcp://127.0.0.1:*");
  return socket;
}

const receive = (socket) => withTimeout(socket.receive(), 5000, "receive");

describe("vectors", () => {
  it("encode: native data becomes exactly the vector frames", () => {
    assert.ok(vectors.encode.length > 10);
    for (const c of vectors.encode) {
      assert.deepEqual(pbp.encode(c.topic, c.data, c.id), expected(c), c.name);
    }
  });

  it("encode_json: JSON text is sent byte for byte", () => {
    assert.ok(vectors.encode_json.length > 3);
    for (const c of vectors.encode_json) {
      assert.deepEqual(pbp.encodeJson(c.topic, c.data_json, c.id), expected(c), c.name);
      assert.deepEqual(pbp.encodeJson(c.topic, Buffer.from(c.data_json, "utf8"), c.id), expected(c), c.name);
    }
  });

  it("reject: each one-defect input is refused with its kind and reason", () => {
    assert.ok(vectors.reject.length > 50);
    for (const c of vectors.reject) {
      let tried = 0;
      if ("data_json" in c) {
        refused(() => pbp.encodeJson(c.topic, c.data_json, c.id), c.error, c.reason ?? null);
        tried += 1;
      }
      if ("data" in c) {
        refused(() => pbp.encode(c.topic, c.data, c.id), c.error, c.reason ?? null);
        tried += 1;
      }
      assert.ok(tried > 0, c.name);
    }
  });

  it("limits: every frame counts, in bytes", () => {
    assert.equal(pbp.DEFAULT_MAX_MESSAGE_BYTES, vectors.max_message_bytes);
    for (const c of vectors.limits) {
      const limit = c.max_message_bytes ?? vectors.max_message_bytes;
      const call =
        "data_json" in c
          ? () => pbp.encodeJson(c.topic, c.data_json, c.id, limit)
          : () => pbp.encode(c.topic, "x".repeat(c.data_x), c.id, limit);
      if (c.ok) {
        const frames = call();
        assert.equal(frames[0].length + frames[1].length + frames[2].length, c.size, c.name);
      } else {
        const e = refused(call, "too_large");
        assert.match(e.message, new RegExp(`${c.size} bytes, above the ${limit}-byte limit`), c.name);
      }
    }
  });
});

describe("what a JSON vector cannot carry", () => {
  it("refuses values with no JSON form instead of writing null", () => {
    for (const data of [NaN, Infinity, [-Infinity], { a: NaN }, 10n, undefined, () => 1, Symbol("s"),
      "lone \ud800 surrogate", { "\udc00": 1 }]) {
      const e = refused(() => pbp.encode("t", data, "i"), "invalid_data");
      assert.match(e.message, /could not serialize the event data to JSON/);
    }
  });

  it("refuses lone surrogates in topics and JSON text, and bytes that are not UTF-8", () => {
    refused(() => pbp.encode("a\ud800", 1, "i"), "invalid_topic", "not_utf8");
    refused(() => pbp.encodeJson("t", '"\ud800"', "i"), "invalid_data");
    refused(() => pbp.encodeJson("t", Buffer.from([0x22, 0xff, 0x22]), "i"), "invalid_data");
  });

  it("refuses deep data without crashing", () => {
    let deep = [];
    for (let i = 0; i < 100000; i++) deep = [deep];
    refused(() => pbp.encode("t", deep, "i"), "invalid_data");
    refused(() => pbp.encodeJson("t", "[".repeat(100000) + "]".repeat(100000), "i"), "invalid_data");
  });

  it("throws TypeError for arguments of the wrong type", () => {
    assert.throws(() => pbp.encode(Buffer.from("t"), 1, "i"), TypeError);
    assert.throws(() => pbp.encode("t", 1, 42), TypeError);
    assert.throws(() => pbp.encodeJson("t", 1, "i"), TypeError);
    assert.throws(() => new Publisher("tcp://127.0.0.1:1", { lingerMs: 1 }), /lingerMs/);
  });

  it("names the problem in the message", () => {
    const e = refused(() => pbp.encode("a b", 1, "i"), "invalid_topic", "bad_character");
    assert.equal(e.message, 'invalid topic "a b": it contains whitespace or a control character');
    assert.match(refused(() => pbp.encode("t", 1, ""), "invalid_id").message, /1-128 bytes of printable ASCII/);
  });
});

describe("ids", () => {
  it("are UUIDv7 text with the current time", () => {
    const before = Date.now();
    const id = pbp.newEventId();
    const after = Date.now();
    assert.match(id, UUID7);
    const ms = parseInt(id.replace(/-/g, "").slice(0, 12), 16);
    assert.ok(before <= ms && ms <= after, `${ms} not in [${before}, ${after}]`);
    pbp.checkId(id);
  });

  it("strictly increase, even within a millisecond, and are unique", () => {
    const ids = Array.from({ length: 20000 }, () => pbp.newEventId());
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} !< ${ids[i]}`);
    assert.equal(new Set(ids).size, ids.length);
  });
});

describe("sockets", () => {
  it("PUSH sends exactly the vector frames, in call order", async () => {
    const peer = await pull();
    const publisher = new Publisher(peer.lastEndpoint);
    const cases = vectors.encode.slice(0, 5);
    // Not awaited one by one: the publisher keeps them in order.
    const ids = await Promise.all(cases.map((c) => publisher.publish(c.topic, c.data, c.id)));
    assert.deepEqual(ids, cases.map((c) => c.id));
    for (const c of cases) assert.deepEqual(await receive(peer), expected(c), c.name);
    const id = await publisher.publish("news:sport", { score: [2, 1] });
    assert.match(id, UUID7);
    assert.deepEqual(await receive(peer), [Buffer.from("news:sport"), Buffer.from(id), Buffer.from('{"score":[2,1]}')]);
    const jsonId = await publisher.publishJson("t", '{ "a" : 1 }');
    assert.deepEqual(await receive(peer), [Buffer.from("t"), Buffer.from(jsonId), Buffer.from('{ "a" : 1 }')]);
    await assert.rejects(publisher.publish("news:*", 1), (e) => e.kind === "invalid_topic");
    await publisher.publish("after", 1, "x");
    assert.equal((await receive(peer))[0].toString(), "after", "nothing was sent for the refused event");
    await publisher.close();
    await publisher.close();
    await assert.rejects(publisher.publish("t", 1), (e) => e.kind === "closed");
    peer.close();
  });

  it("PUB binds and subscribers receive what matches their prefix", async () => {
    const publisher = new Publisher("tcp://127.0.0.1:*", { bindPub: true });
    await publisher.ready;
    assert.match(publisher.endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const sub = new zmq.Subscriber({ linger: 0 });
    sub.connect(publisher.endpoint);
    sub.subscribe("news");
    // A PUB drops what it sends before the subscription arrives: probe until one lands.
    const firstProbe = sub.receive();
    const deadline = Date.now() + 5000;
    let landed = false;
    firstProbe.then(() => (landed = true));
    while (!landed) {
      assert.ok(Date.now() < deadline, "the SUB never received a probe");
      await publisher.publish("news:probe", 0);
      await new Promise((r) => setTimeout(r, 20));
    }
    const id = await publisher.publish("news:world", { n: 1 });
    await publisher.publish("other", 2);
    await publisher.publish("news:end", 3);
    let frames;
    do frames = await receive(sub); while (frames[0].toString() === "news:probe");
    assert.deepEqual(frames, [Buffer.from("news:world"), Buffer.from(id), Buffer.from('{"n":1}')]);
    assert.equal((await receive(sub))[0].toString(), "news:end", "other was filtered by prefix");
    await publisher.close();
    sub.close();
  });

  it("a full queue fails after the send timeout", async () => {
    const publisher = new Publisher("tcp://127.0.0.1:1", { sendHighWaterMark: 2, sendTimeout: 50, linger: 0 });
    const started = Date.now();
    let error;
    for (let i = 0; i < 100 && !error; i++) {
      await publisher.publish("t", i).catch((e) => (error = e));
    }
    const elapsed = Date.now() - started;
    assert.ok(error instanceof PublishError);
    assert.equal(error.kind, "queue_full", error.message);
    assert.match(error.message, /is full \(2 messages\)/);
    assert.ok(elapsed >= 45 && elapsed < 2000, `${elapsed} ms`);
    await publisher.close();
  });

  it("a bind that fails rejects ready and every publish", async () => {
    const publisher = new Publisher("tcp://192.0.2.1:5556", { bindPub: true });
    await assert.rejects(publisher.ready, (e) => e.kind === "bind" && e.message.includes('"tcp://192.0.2.1:5556"'));
    await assert.rejects(publisher.publish("t", 1), (e) => e.kind === "bind");
    await publisher.close();
  });

  it("a bad endpoint is a clear error", () => {
    assert.throws(() => new Publisher("bogus://x"), (e) => e.kind === "connect" && e.message.includes('"bogus://x"'));
  });
});
