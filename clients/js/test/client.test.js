// Unit tests of push-bridge-client: the backoff, the close-code table, pattern
// matching, request chunking, and the client's state machine driven through a scripted
// WebSocket and mocked timers. The browser tests (bridge/tests/client_js.rs) run the
// same file against the real bridge in Chromium.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";

import { backoffDelay, chunkRequests, closeAction, connect, matches, PROTOCOL, PushBridgeError } from "../src/index.js";

/** A WebSocket the test plays the bridge for: it records what the client sends. */
class ScriptedSocket {
  static made = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    ScriptedSocket.made.push(this);
  }
  send(text) {
    assert.equal(this.readyState, 1, "sent on a socket that is not open");
    this.sent.push(JSON.parse(text));
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // The bridge's side.
  welcome(session = "s1") {
    this.readyState = 1;
    this.frame({ type: "welcome", session, heartbeat: 25 });
  }
  frame(message) {
    this.onmessage({ data: JSON.stringify(message) });
  }
  event(topic, id, data = {}) {
    this.frame({ type: "event", topic, id, data });
  }
  /** Answers the last request sent with `subscribed` (and `recovered` when it had `since`). */
  answer(recovered) {
    const request = this.sent.at(-1);
    const answer = { type: `${request.type}d`, topics: request.topics, ref: request.ref };
    if (request.since !== undefined) answer.recovered = recovered ?? true;
    this.frame(answer);
  }
  lose(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose({ code, reason });
  }
}

const latest = () => ScriptedSocket.made.at(-1);
const flush = () => new Promise((resolve) => setImmediate(resolve));
const NO_JITTER = { initial: 100, max: 1000, factor: 2, jitter: 0 };

function open(options = {}) {
  const client = connect("ws://bridge.test/", { token: "t0k3n", WebSocket: ScriptedSocket, backoff: NO_JITTER, ...options });
  const seen = { states: [], errors: [], resets: [], resumed: [] };
  client.on("state", (state, details) => seen.states.push({ state, ...details }));
  client.on("error", (error) => seen.errors.push(error));
  client.on("reset", (reset) => seen.resets.push(reset));
  client.on("resumed", (resumed) => seen.resumed.push(resumed));
  return { client, seen };
}

/** A client subscribed to `a` that has delivered one event, `id`. */
function openAfterEvent(id, options) {
  const opened = open(options);
  opened.client.subscribe("a", () => {});
  latest().welcome();
  latest().answer();
  latest().event("a", id);
  return opened;
}

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the maximum", () => {
    const delays = [0, 1, 2, 3, 4, 5, 10, 100].map((n) => backoffDelay(n, NO_JITTER));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  });
  it("takes up to `jitter` of the delay off at random", () => {
    const backoff = { ...NO_JITTER, jitter: 0.5 };
    assert.equal(backoffDelay(2, backoff, () => 0), 400);
    assert.equal(backoffDelay(2, backoff, () => 0.999999), 200);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, backoff);
      assert.ok(delay >= 400 && delay <= 800, `${delay}`);
    }
  });
  it("defaults to 0.5 s doubling to 30 s", () => {
    assert.equal(backoffDelay(0, undefined, () => 0), 500);
    assert.equal(backoffDelay(20, undefined, () => 0), 30_000);
  });
});

describe("closeAction", () => {
  const action = (code, canRefresh = false) => {
    const { action, error } = closeAction(code, "why", canRefresh);
    return [action, error?.code, error?.fatal];
  };
  it("maps the bridge's close codes", () => {
    assert.deepEqual(action(4001, true), ["refresh", "token_expired", false]);
    assert.deepEqual(action(4001, false), ["stop", "token_expired", true]);
    assert.deepEqual(action(4003), ["stop", "token_revoked", true]);
    assert.deepEqual(action(4008), ["resume", "too_slow", false]);
    assert.deepEqual(action(1008), ["stop", "policy", true]);
    for (const code of [1003, 1007, 1009]) assert.deepEqual(action(code), ["stop", "protocol_error", true]);
    for (const code of [1000, 1001, 1006, 1011, 1012, 4000]) assert.deepEqual(action(code), ["reconnect", undefined, undefined]);
  });
  it("keeps the bridge's reason", () => {
    assert.match(closeAction(1008, "too many refused frames").error.message, /too many refused frames/);
    assert.equal(closeAction(4003).error.closeCode, 4003);
  });
});

describe("matches", () => {
  it("matches whole segments, `*` any one, and everything below", () => {
    assert.ok(matches("activeflow", "activeflow"));
    assert.ok(matches("activeflow", "activeflow:74ac:step:3"));
    assert.ok(matches("tenant:*:article", "tenant:acme:article:42"));
    assert.ok(matches("*", "anything:at:all"));
    assert.ok(!matches("article:42", "article:421"));
    assert.ok(!matches("article:42", "article"));
    assert.ok(!matches("articles", "article"));
  });
});

describe("chunkRequests", () => {
  it("keeps every request within the byte limit, in order", () => {
    const topics = Array.from({ length: 100 }, (_, i) => `tenant:é${i}:${"x".repeat(200)}`);
    const make = (batch) => ({ type: "subscribe", topics: batch, ref: Number.MAX_SAFE_INTEGER });
    const requests = chunkRequests(topics, make, 4096);
    assert.ok(requests.length > 1);
    for (const request of requests) assert.ok(Buffer.byteLength(JSON.stringify(request)) <= 4096);
    assert.deepEqual(requests.flatMap((r) => r.topics), topics);
  });
});

describe("Client", () => {
  beforeEach(() => {
    ScriptedSocket.made = [];
    mock.timers.enable({ apis: ["setTimeout"] });
  });
  afterEach(() => mock.timers.reset());

  it("offers the native protocol and the token as a bearer subprotocol", () => {
    open();
    assert.equal(latest().url, "ws://bridge.test/");
    assert.deepEqual(latest().protocols, [PROTOCOL, "bearer.t0k3n"]);
  });

  it("puts a token a subprotocol cannot hold in the URL, and turns http into ws", () => {
    connect("https://bridge.test/push?x=1", { token: "a b/c", WebSocket: ScriptedSocket });
    assert.equal(latest().url, "wss://bridge.test/push?x=1&token=a+b%2Fc");
    assert.deepEqual(latest().protocols, [PROTOCOL]);
  });

  it("connects without any token when anonymous", () => {
    connect("ws://bridge.test/", { anonymous: true, WebSocket: ScriptedSocket });
    assert.equal(latest().url, "ws://bridge.test/");
    assert.deepEqual(latest().protocols, [PROTOCOL]);
  });

  it("refuses what it cannot use", () => {
    assert.throws(() => connect("ftp://bridge.test/", { token: "t", WebSocket: ScriptedSocket }), /not a ws/);
    assert.throws(() => connect("ws://bridge.test/", { WebSocket: ScriptedSocket }), /token/);
    assert.throws(() => connect("ws://bridge.test/", { anonymous: false, WebSocket: ScriptedSocket }), /token/);
  });

  it("subscribes once welcomed and delivers each event once to each matching subscription", async () => {
    const { client, seen } = open();
    const got = { both: [], articles: [] };
    const both = client.subscribe(["package_created", "article:*"], (e) => got.both.push(e.id));
    client.subscribe("article", (e) => got.articles.push(e.id));
    assert.equal(client.state, "connecting");
    assert.deepEqual(latest().sent, []);

    latest().welcome();
    assert.equal(client.state, "open");
    assert.equal(client.session, "s1");
    // One request per subscription: a refusal ends only its own.
    assert.deepEqual(latest().sent, [
      { type: "subscribe", topics: ["package_created", "article:*"], ref: 1 },
      { type: "subscribe", topics: ["article"], ref: 2 },
    ]);
    latest().frame({ type: "subscribed", topics: ["package_created", "article:*"], ref: 1 });
    latest().answer();
    assert.deepEqual(await both.ready, { patterns: ["package_created", "article:*"] });

    latest().event("article:42", "e1");
    latest().event("package_created", "e2");
    latest().event("other", "e3");
    assert.deepEqual(got, { both: ["e1", "e2"], articles: ["e1"] });
    assert.equal(client.lastEventId, "e3");
    assert.deepEqual(seen.resets, []);
    assert.deepEqual(seen.resumed, [], "the first connection resumes nothing");
  });

  it("reconnects after the backoff and resumes from the last event", async () => {
    const { client, seen } = open();
    client.subscribe(["a", "b"], () => {});
    latest().welcome();
    latest().answer();
    latest().event("a", "e1");
    latest().event("b:1", "e2");

    latest().lose(1006);
    assert.equal(client.state, "reconnecting");
    assert.deepEqual(seen.states.at(-1), { state: "reconnecting", code: 1006, reason: "", attempt: 1, delay: 100 });
    assert.equal(ScriptedSocket.made.length, 1);
    mock.timers.tick(99);
    assert.equal(ScriptedSocket.made.length, 1);
    mock.timers.tick(1);
    assert.equal(ScriptedSocket.made.length, 2);

    latest().welcome("s2");
    assert.deepEqual(latest().sent, [{ type: "subscribe", topics: ["a", "b"], since: "e2", ref: 2 }]);
    latest().answer(true);
    assert.deepEqual(seen.resumed, [{ patterns: ["a", "b"], recovered: true }]);
    assert.deepEqual(seen.resets, []);
    assert.deepEqual(seen.errors, []);
  });

  it("backs off further while the bridge stays away, and from the start again once welcomed", () => {
    const { client, seen } = open();
    latest().lose(1006); // never welcomed: each failure reports connect_failed
    for (const expected of [200, 400, 800, 1000, 1000]) {
      mock.timers.tick(seen.states.at(-1).delay);
      latest().lose(1006);
      assert.equal(seen.states.at(-1).delay, expected);
    }
    assert.equal(seen.errors.length, 6);
    assert.ok(seen.errors.every((e) => e.code === "connect_failed" && !e.fatal));
    mock.timers.tick(1000);
    latest().welcome();
    latest().lose(1001);
    assert.equal(seen.states.at(-1).delay, 100);
    assert.equal(client.state, "reconnecting");
  });

  it("says reset when the bridge cannot replay", () => {
    const { client, seen } = openAfterEvent("e1");
    latest().lose(1001);
    mock.timers.tick(100);
    latest().welcome();
    latest().answer(false);
    assert.deepEqual(seen.resumed, [{ patterns: ["a"], recovered: false }]);
    assert.deepEqual(seen.resets, [{ patterns: ["a"], reason: "not_recovered" }]);
  });

  it("says reset after a reconnection when no event had come yet to resume from", () => {
    const { client, seen } = open();
    client.subscribe("quiet", () => {});
    latest().welcome();
    latest().answer();
    latest().lose(1006);
    mock.timers.tick(100);
    latest().welcome();
    assert.deepEqual(latest().sent, [{ type: "subscribe", topics: ["quiet"], ref: 2 }]);
    latest().answer();
    assert.deepEqual(seen.resets, [{ patterns: ["quiet"], reason: "no_position" }]);
  });

  it("asks getToken again when the token expires, and resumes at once", async () => {
    let calls = 0;
    const { client, seen } = open({ token: undefined, getToken: async () => `jwt${++calls}` });
    await flush();
    assert.deepEqual(latest().protocols, [PROTOCOL, "bearer.jwt1"]);
    client.subscribe("a", () => {});
    latest().welcome();
    latest().answer();
    latest().event("a", "e1");

    latest().lose(4001, "token expired");
    await flush();
    assert.equal(calls, 2);
    assert.equal(ScriptedSocket.made.length, 2, "no backoff after an expiry");
    assert.deepEqual(latest().protocols, [PROTOCOL, "bearer.jwt2"]);
    latest().welcome();
    assert.equal(latest().sent[0].since, "e1");
    assert.deepEqual(
      seen.errors.map((e) => [e.code, e.fatal, e.closeCode]),
      [["token_expired", false, 4001]],
    );
  });

  it("takes subscriptions while it waits for a token, and sends them once welcomed", async () => {
    let release;
    const { client, seen } = open({ token: undefined, getToken: () => new Promise((resolve) => (release = resolve)) });
    release("one");
    await flush();
    latest().welcome();
    latest().lose(4001);
    assert.equal(client.state, "connecting", "no longer open while the new token is on its way");
    const ready = client.subscribe("late", () => {});
    release("two");
    await flush();
    latest().welcome();
    assert.deepEqual(latest().sent, [{ type: "subscribe", topics: ["late"], ref: 1 }]);
    latest().answer();
    await ready.ready;
    assert.deepEqual(
      seen.states.map((s) => s.state),
      ["open", "connecting", "open"],
    );
  });

  it("stops when the token expires and nothing can refresh it", () => {
    const { client, seen } = open();
    latest().welcome();
    latest().lose(4001);
    mock.timers.tick(60_000);
    assert.equal(client.state, "closed");
    assert.equal(ScriptedSocket.made.length, 1);
    assert.equal(seen.errors[0].code, "token_expired");
    assert.ok(seen.errors[0].fatal);
  });

  it("stops for good when the token is revoked", () => {
    const { client, seen } = open();
    latest().welcome();
    latest().lose(4003, "token revoked");
    mock.timers.tick(60_000);
    assert.equal(client.state, "closed");
    assert.equal(ScriptedSocket.made.length, 1);
    assert.deepEqual(
      seen.errors.map((e) => [e.code, e.fatal, e.closeCode]),
      [["token_revoked", true, 4003]],
    );
    assert.ok(seen.errors[0] instanceof PushBridgeError);
    assert.equal(seen.states.at(-1).error, seen.errors[0]);
  });

  it("stops with the bridge's reason on a policy close", () => {
    const { client, seen } = open();
    latest().welcome();
    latest().lose(1008, "too many bad frames");
    assert.equal(client.state, "closed");
    assert.match(seen.errors[0].message, /too many bad frames/);
  });

  it("resumes at once when dropped for being too slow", () => {
    const { client, seen } = openAfterEvent("e7");
    latest().lose(4008);
    assert.equal(ScriptedSocket.made.length, 2);
    latest().welcome();
    assert.equal(latest().sent[0].since, "e7");
    assert.equal(seen.errors[0].code, "too_slow");
  });

  it("rejects a refused subscribe and keeps the others", async () => {
    const { client, seen } = open();
    latest().welcome();
    const good = client.subscribe("a", () => {});
    latest().answer();
    const bad = client.subscribe(["b", "secret"], () => {});
    const request = latest().sent.at(-1);
    assert.deepEqual(request.topics, ["b", "secret"]);
    latest().frame({ type: "error", code: "forbidden", message: "not permitted: secret", ref: request.ref });
    await assert.rejects(bad.ready, (e) => e.code === "forbidden" && e.patterns.join() === "b,secret");
    assert.equal(latest().sent.at(-1), request, "nothing to unsubscribe: the bridge holds none of them");
    await good.ready;
    assert.equal(seen.errors.at(-1).code, "forbidden");
    // Only what is still held is subscribed after a reconnection.
    latest().lose(1006);
    mock.timers.tick(100);
    latest().welcome();
    assert.deepEqual(latest().sent[0].topics, ["a"]);
  });

  it("ends only the refused one of the subscriptions made before the first welcome", async () => {
    const { client } = open();
    const good = client.subscribe("a", () => {});
    const bad = client.subscribe("no*pe", () => {});
    latest().welcome();
    const [first, second] = latest().sent;
    latest().frame({ type: "subscribed", topics: ["a"], ref: first.ref });
    latest().frame({ type: "error", code: "bad_request", message: "invalid", ref: second.ref });
    await good.ready;
    await assert.rejects(bad.ready, (e) => e.code === "bad_request" && e.patterns.join() === "no*pe");
  });

  it("asks for each pattern on its own when a resume is refused, and ends only what is refused", async () => {
    const { client, seen } = open();
    const got = [];
    client.subscribe(["a", "gone"], (e) => got.push(e.id));
    latest().welcome();
    latest().answer();
    latest().event("a", "e1");
    latest().lose(1006);
    mock.timers.tick(100);
    const socket = latest();
    socket.welcome();
    socket.frame({ type: "error", code: "forbidden", message: "not permitted: gone", ref: socket.sent[0].ref });
    assert.deepEqual(
      socket.sent.slice(1).map((r) => [r.topics, r.since]),
      [
        [["a"], "e1"],
        [["gone"], "e1"],
      ],
    );
    socket.frame({ type: "subscribed", topics: ["a"], recovered: true, ref: socket.sent[1].ref });
    socket.frame({ type: "error", code: "forbidden", message: "not permitted: gone", ref: socket.sent[2].ref });
    // The subscription held both: it ends, and the bridge is told to drop `a` too.
    assert.deepEqual(socket.sent.at(-1), { type: "unsubscribe", topics: ["a"], ref: socket.sent.at(-1).ref });
    assert.equal(seen.errors.at(-1).code, "forbidden");
    socket.event("a", "e2");
    assert.deepEqual(got, ["e1"], "nothing after the subscription ended");
  });

  it("counts patterns held by several subscriptions", () => {
    const { client } = open();
    latest().welcome();
    const first = client.subscribe("a", () => {});
    latest().answer();
    const second = client.subscribe(["a", "b"], () => {});
    latest().answer();
    const sent = latest().sent.length;
    first();
    assert.equal(latest().sent.length, sent, "`a` is still held");
    second("b");
    assert.deepEqual(latest().sent.at(-1).topics, ["b"]);
    second();
    assert.deepEqual(latest().sent.at(-1), { type: "unsubscribe", topics: ["a"], ref: latest().sent.at(-1).ref });
  });

  it("close() stops without reconnecting; reconnect() resumes", () => {
    const { client, seen } = openAfterEvent("e1");
    client.close();
    assert.deepEqual(latest().closedWith, { code: 1000, reason: "closed by the client" });
    assert.equal(client.state, "closed");
    mock.timers.tick(60_000);
    assert.equal(ScriptedSocket.made.length, 1);

    client.reconnect();
    latest().welcome();
    assert.equal(latest().sent[0].since, "e1");
    latest().answer(true);
    assert.deepEqual(seen.resumed, [{ patterns: ["a"], recovered: true }]);
    assert.deepEqual(seen.errors, []);
  });

  it("drops a connection the bridge does not welcome in time", () => {
    const { client } = open({ connectTimeout: 5000 });
    mock.timers.tick(5000);
    assert.equal(client.state, "reconnecting");
    assert.deepEqual(ScriptedSocket.made[0].closedWith, { code: 1000, reason: "" });
  });

  it("retries when getToken fails", async () => {
    let calls = 0;
    const { client, seen } = open({
      token: undefined,
      getToken: async () => {
        if (++calls === 1) throw new Error("auth API down");
        return "fresh";
      },
    });
    await flush();
    assert.equal(client.state, "reconnecting");
    assert.match(seen.errors[0].message, /auth API down/);
    assert.equal(ScriptedSocket.made.length, 0);
    mock.timers.tick(100);
    await flush();
    assert.deepEqual(latest().protocols, [PROTOCOL, "bearer.fresh"]);
  });
});
