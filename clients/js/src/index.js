// push-bridge-client: the dashboard's side of push-bridge's native WebSocket protocol
// (`push-bridge.v1`), for browsers and Node ≥ 22 (or any global `WebSocket`).
//
//   const bridge = connect("wss://push.example.com/", { getToken: () => fetchToken() });
//   bridge.subscribe(["package_created", "article:*"], (event) => refresh(event));
//   bridge.on("reset", () => refetchEverything());
//
// It reconnects with exponential backoff and jitter, and resumes every subscription
// from the last event it delivered (`since`), so a reconnect neither loses nor repeats
// an event; when the bridge cannot replay what was missed it says so with a `reset`.
// `getToken` is asked again before each connection and when the token expires (close
// `4001`); the token travels in the `bearer.` subprotocol, never in a URL the browser
// logs, whenever it is made of the characters a subprotocol allows.
//
// One file, no dependencies: the bridge serves this very file at
// `/push-bridge-client.js`, and npm ships it as the package `push-bridge-client`.

export const VERSION = "0.1.0";

/** The native protocol's subprotocol name. */
export const PROTOCOL = "push-bridge.v1";

/** What a subprotocol entry may hold (RFC 9110 `token`): tokens made of anything else go in the URL. */
const SUBPROTOCOL_SAFE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const DEFAULTS = Object.freeze({
  /** Reconnect delays: `initial · factor^attempt`, at most `max`, less up to `jitter` of it at random. */
  backoff: Object.freeze({ initial: 500, max: 30_000, factor: 2, jitter: 0.5 }),
  /** A connection that has not been welcomed within this many ms is dropped and retried. */
  connectTimeout: 10_000,
  /** The largest request sent (the bridge's default `server.max_inbound_frame_bytes`). */
  maxFrameBytes: 4096,
});

/** An error the client reports through `on("error")` and subscription promises. */
export class PushBridgeError extends Error {
  /**
   * @param {string} code what went wrong, e.g. `token_revoked`, `forbidden`
   * @param {string} message a sentence for people
   * @param {{fatal?: boolean, closeCode?: number, patterns?: string[]}} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = "PushBridgeError";
    this.code = code;
    /** True when the client stopped because of it (state `closed`). */
    this.fatal = details.fatal ?? false;
    if (details.closeCode !== undefined) this.closeCode = details.closeCode;
    if (details.patterns !== undefined) this.patterns = details.patterns;
  }
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first after a loss), in ms.
 * Full exponential backoff with jitter: a bridge restarting in front of thousands of
 * dashboards is not hit by all of them at the same instant.
 */
export function backoffDelay(attempt, backoff = DEFAULTS.backoff, random = Math.random) {
  const { initial, max, factor, jitter } = { ...DEFAULTS.backoff, ...backoff };
  const ceiling = Math.min(max, initial * factor ** Math.min(attempt, 64));
  return Math.round(ceiling * (1 - jitter * random()));
}

/**
 * What a close of the connection means, from its code (docs/clients.md lists them):
 * `reconnect` after the backoff, `resume` at once (the bridge dropped us for being
 * slow), `refresh` the token and reconnect at once, or `stop` for good.
 * @returns {{action: "reconnect" | "resume" | "refresh" | "stop", error?: PushBridgeError}}
 */
export function closeAction(code, reason = "", canRefresh = false) {
  const why = reason ? `: ${reason}` : "";
  const error = (name, message, fatal) => new PushBridgeError(name, message, { fatal, closeCode: code });
  switch (code) {
    case 4001:
      return canRefresh
        ? { action: "refresh", error: error("token_expired", "the token expired; getting a new one", false) }
        : { action: "stop", error: error("token_expired", "the token expired, and there is no getToken to get another", true) };
    case 4003:
      return { action: "stop", error: error("token_revoked", `the bridge revoked the token${why}`, true) };
    case 4008:
      return { action: "resume", error: error("too_slow", "the page fell too far behind; resuming", false) };
    case 1008:
      return { action: "stop", error: error("policy", `the bridge closed the connection for a policy violation${why}`, true) };
    case 1003:
    case 1007:
    case 1009:
      return { action: "stop", error: error("protocol_error", `the bridge refused what this client sent (close ${code}${why})`, true) };
    default:
      // 1000, 1001 (the bridge is shutting down or restarting), 1006 (lost), 1011…
      return { action: "reconnect" };
  }
}

/** Whether pattern `pattern` matches topic `topic` (docs/clients.md: whole segments, `*` any one). */
export function matches(pattern, topic) {
  const want = pattern.split(":");
  const have = topic.split(":");
  if (want.length > have.length) return false;
  return want.every((segment, i) => segment === "*" || segment === have[i]);
}

/** UTF-8 length of a string. */
function byteLength(text) {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/**
 * Splits one request over `topics` into requests that each fit in `maxBytes` once
 * serialized (`make(topics)` builds one). A pattern that alone does not fit still
 * gets its own request: the bridge then says what is wrong with it.
 */
export function chunkRequests(topics, make, maxBytes) {
  const requests = [];
  let batch = [];
  for (const topic of topics) {
    const candidate = [...batch, topic];
    if (batch.length && byteLength(JSON.stringify(make(candidate))) > maxBytes) {
      requests.push(make(batch));
      batch = [topic];
    } else {
      batch = candidate;
    }
  }
  if (batch.length) requests.push(make(batch));
  return requests;
}

/** Calls a listener of the application; what it throws is reported, never breaks the client. */
function call(listener, ...args) {
  try {
    listener(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * Opens a client and starts connecting.
 * @param {string | URL} url the bridge's WebSocket URL (`ws://`, `wss://`; `http(s)://`
 *   and paths relative to the page are turned into the WebSocket URL)
 * @param {object} [options] see the type declarations (index.d.ts)
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

export class Client {
  #url;
  #options;
  #WebSocket;
  #state = "connecting";
  #socket = null;
  #session = null;
  #attempt = 0;
  #timer = null;
  #generation = 0; // bumped on each connection attempt and on close(); late callbacks of older ones are ignored
  #listeners = { state: new Set(), error: new Set(), reset: new Set(), resumed: new Set() };
  /** Every subscription the application holds, in the order made. */
  #subscriptions = new Set();
  /** Pattern → how many subscriptions hold it; the bridge holds the keys. */
  #held = new Map();
  /** Patterns the bridge confirmed on the current connection. */
  #confirmed = new Set();
  /** `ref` → the request it answers. */
  #pending = new Map();
  #refs = 0;
  /** The id of the last event delivered: where every subscription resumes from. */
  #lastId = null;
  /** Whether the current connection is a reconnection (its re-subscribe is a resume). */
  #resuming = false;
  #onOnline = () => {
    if (this.#state === "reconnecting") this.reconnect();
  };

  constructor(url, options = {}) {
    const base = globalThis.location?.href;
    const parsed = new URL(url, base);
    if (parsed.protocol === "http:") parsed.protocol = "ws:";
    if (parsed.protocol === "https:") parsed.protocol = "wss:";
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new TypeError(`push-bridge-client: ${parsed.href} is not a ws://, wss://, http:// or https:// URL`);
    }
    if (options.token === undefined && options.getToken === undefined && options.anonymous !== true) {
      throw new TypeError("push-bridge-client: give `token` or `getToken` (or `anonymous: true`)");
    }
    this.#url = parsed;
    this.#options = {
      ...options,
      backoff: { ...DEFAULTS.backoff, ...options.backoff },
      connectTimeout: options.connectTimeout ?? DEFAULTS.connectTimeout,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
    };
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== "function") {
      throw new TypeError("push-bridge-client: no WebSocket here; pass one as the `WebSocket` option");
    }
    globalThis.addEventListener?.("online", this.#onOnline);
    this.#open();
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this.#state;
  }

  /** The bridge's session id while open, else null. */
  get session() {
    return this.#session;
  }

  /** The id of the last event delivered (where a reconnect resumes), or null. */
  get lastEventId() {
    return this.#lastId;
  }

  /**
   * Listens for `state` (state, details), `error` (PushBridgeError), `reset`
   * ({patterns, reason}) or `resumed` ({patterns, recovered}). Returns the function
   * that stops listening.
   */
  on(name, listener) {
    const listeners = this.#listeners[name];
    if (!listeners) throw new TypeError(`push-bridge-client: no event "${name}"`);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /**
   * Subscribes to `patterns` (a pattern or a list) and calls `onEvent({topic, id,
   * data})` once for each event on any of them. Returns the function that unsubscribes
   * (from all of them, or from the ones it is given); its `ready` promise settles with
   * the bridge's answer: fulfilled once subscribed, rejected with a PushBridgeError
   * (`forbidden`, `bad_request`, `too_many_subscriptions`) when refused.
   */
  subscribe(patterns, onEvent) {
    const list = [...new Set(typeof patterns === "string" ? [patterns] : patterns)];
    if (!list.length || list.some((p) => typeof p !== "string")) {
      throw new TypeError("push-bridge-client: subscribe takes a pattern or a non-empty list of patterns");
    }
    if (typeof onEvent !== "function") throw new TypeError("push-bridge-client: subscribe needs an onEvent function");
    let settle;
    const ready = new Promise((resolve, reject) => (settle = { resolve, reject }));
    ready.catch(() => {}); // refusals also go to on("error"); an unawaited `ready` is fine
    const subscription = { patterns: new Set(list), onEvent, settle, waiting: new Set() };
    this.#subscriptions.add(subscription);
    for (const pattern of list) {
      this.#held.set(pattern, (this.#held.get(pattern) ?? 0) + 1);
      if (!this.#confirmed.has(pattern)) subscription.waiting.add(pattern);
    }
    if (subscription.waiting.size === 0) {
      settle.resolve({ patterns: list });
      subscription.settle = null;
    } else if (this.#session !== null) {
      // Its own request, even for patterns another one is asking for: a refusal (all
      // or nothing) then ends exactly this subscription.
      this.#request("subscribe", [...subscription.waiting], {}, { owner: subscription });
    }
    const unsubscribe = (some) => this.#unsubscribe(subscription, some);
    unsubscribe.ready = ready;
    return unsubscribe;
  }

  /** Connects again now: after close(), or to skip the wait while reconnecting. */
  reconnect() {
    this.#drop(1000, "reconnecting");
    if (this.#state === "closed") globalThis.addEventListener?.("online", this.#onOnline);
    this.#attempt = 0;
    this.#open();
  }

  /** Closes the connection for good (until reconnect()); subscriptions are kept. */
  close() {
    if (this.#state === "closed") return;
    this.#drop(1000, "closed by the client");
    globalThis.removeEventListener?.("online", this.#onOnline);
    this.#setState("closed", { reason: "closed by the client" });
  }

  // -- connection life cycle ------------------------------------------------------

  #setState(state, details = {}) {
    this.#state = state;
    for (const listener of [...this.#listeners.state]) call(listener, state, details);
  }

  #emit(name, value) {
    for (const listener of [...this.#listeners[name]]) call(listener, value);
  }

  /** Forgets the current socket (closing it) and any timer. */
  #drop(code, reason) {
    this.#generation++;
    clearTimeout(this.#timer);
    this.#timer = null;
    const socket = this.#socket;
    this.#socket = null;
    this.#session = null;
    if (this.#confirmed.size || this.#lastId !== null) this.#resuming = true;
    this.#confirmed.clear();
    // Answers that will never come: waiting subscriptions are asked for again on the
    // next welcome.
    this.#pending.clear();
    if (socket && socket.readyState <= 1) {
      try {
        socket.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  async #open() {
    const generation = ++this.#generation;
    if (this.#state === "open" || this.#state === "closed") this.#setState("connecting", { attempt: this.#attempt });
    // Neither token nor getToken (`anonymous: true`): for a bridge with `auth.allow_anonymous`.
    const anonymous = this.#options.token === undefined && this.#options.getToken === undefined;
    let token;
    try {
      token = this.#options.getToken ? await this.#options.getToken() : this.#options.token;
      if (!anonymous && (typeof token !== "string" || token === "")) throw new TypeError(`getToken gave ${typeof token === "string" ? "an empty string" : typeof token}, not a token`);
    } catch (cause) {
      if (generation !== this.#generation) return;
      const error = new PushBridgeError("token_unavailable", `could not get a token: ${cause?.message ?? cause}`);
      error.cause = cause;
      this.#emit("error", error);
      this.#retry({ reason: error.message });
      return;
    }
    if (generation !== this.#generation) return;
    if (this.#state !== "connecting") this.#setState("connecting", { attempt: this.#attempt });
    const url = new URL(this.#url);
    const protocols = [PROTOCOL];
    if (anonymous) {
      // no token anywhere
    } else if (SUBPROTOCOL_SAFE.test(token)) protocols.push(`bearer.${token}`);
    else url.searchParams.set("token", token);
    let socket;
    try {
      socket = new this.#WebSocket(url.href, protocols);
    } catch (cause) {
      const error = new PushBridgeError("connect_failed", `cannot open ${this.#url.href}: ${cause?.message ?? cause}`, { fatal: true });
      this.#emit("error", error);
      this.#drop(1000, "");
      globalThis.removeEventListener?.("online", this.#onOnline);
      this.#setState("closed", { reason: error.message });
      return;
    }
    this.#socket = socket;
    const current = () => generation === this.#generation;
    this.#timer = setTimeout(() => {
      if (!current()) return;
      this.#lost(1006, "no welcome from the bridge in time", false);
    }, this.#options.connectTimeout);
    socket.onmessage = (message) => {
      if (current()) this.#receive(message.data);
    };
    socket.onclose = (event) => {
      if (current()) this.#lost(event.code, event.reason, this.#session !== null);
    };
  }

  /** The connection ended (or never opened): decides what comes next from its close code. */
  #lost(code, reason, welcomed) {
    const decision = closeAction(code, reason, typeof this.#options.getToken === "function");
    this.#drop(1000, "");
    if (decision.error) this.#emit("error", decision.error);
    else if (!welcomed) {
      this.#emit("error", new PushBridgeError("connect_failed", `could not connect to ${this.#url.origin}${reason ? `: ${reason}` : " (unreachable, refused, or the token was refused)"}`, { closeCode: code }));
    }
    if (decision.action === "stop") {
      globalThis.removeEventListener?.("online", this.#onOnline);
      this.#setState("closed", { code, reason, error: decision.error });
    } else if (decision.action === "reconnect") {
      this.#retry({ code, reason });
    } else {
      // `refresh` and `resume`: at once, the bridge is there.
      this.#attempt = 0;
      this.#open();
    }
  }

  #retry(details) {
    const delay = backoffDelay(this.#attempt, this.#options.backoff);
    this.#attempt++;
    const generation = ++this.#generation;
    this.#setState("reconnecting", { ...details, attempt: this.#attempt, delay });
    this.#timer = setTimeout(() => {
      if (generation === this.#generation) this.#open();
    }, delay);
  }

  // -- the protocol ---------------------------------------------------------------

  /** Sends on the welcomed connection (requests are only made while there is one). */
  #send(message) {
    this.#socket.send(JSON.stringify(message));
  }

  /**
   * Sends `type` over `topics`, in as many requests as the bridge's frame limit needs.
   * `how.owner`: the subscription a refusal ends; `how.resume`: the re-subscribe after
   * a reconnection.
   */
  #request(type, topics, extra, how = {}) {
    // Measured with the longest `ref` it can have.
    const make = (batch) => ({ type, topics: batch, ...extra, ref: Number.MAX_SAFE_INTEGER });
    for (const request of chunkRequests(topics, make, this.#options.maxFrameBytes)) {
      request.ref = ++this.#refs;
      this.#pending.set(request.ref, { type, topics: request.topics, since: extra.since, ...how });
      this.#send(request);
    }
  }

  #receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      this.#emit("error", new PushBridgeError("bad_frame", "the bridge sent a frame that is not JSON"));
      return;
    }
    switch (message?.type) {
      case "welcome":
        this.#welcome(message);
        break;
      case "event":
        this.#event(message);
        break;
      case "subscribed":
        this.#subscribed(message);
        break;
      case "unsubscribed":
        this.#pending.delete(message.ref);
        break;
      case "error":
        this.#refused(message);
        break;
      default:
      // Frames of later versions: ignored.
    }
  }

  #welcome(message) {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#attempt = 0;
    this.#session = message.session ?? "";
    if (this.#resuming) {
      // Everything held, in one request from the last event delivered: the replay then
      // comes in publish order.
      const patterns = [...this.#held.keys()];
      const extra = this.#lastId !== null ? { since: this.#lastId } : {};
      if (patterns.length) this.#request("subscribe", patterns, extra, { resume: true });
    } else {
      // The first connection: each subscription made meanwhile asks on its own, so a
      // refusal (all or nothing) ends only its own.
      for (const subscription of this.#subscriptions) {
        if (subscription.waiting.size) this.#request("subscribe", [...subscription.waiting], {}, { owner: subscription });
      }
    }
    this.#setState("open", { session: this.#session, heartbeat: message.heartbeat });
  }

  #event(message) {
    if (typeof message.topic !== "string") return;
    this.#lastId = message.id ?? this.#lastId;
    const event = { topic: message.topic, id: message.id, data: message.data };
    for (const subscription of [...this.#subscriptions]) {
      for (const pattern of subscription.patterns) {
        if (this.#confirmed.has(pattern) && matches(pattern, event.topic)) {
          call(subscription.onEvent, event);
          break;
        }
      }
    }
  }

  #subscribed(message) {
    const request = this.#pending.get(message.ref);
    this.#pending.delete(message.ref);
    const topics = Array.isArray(message.topics) ? message.topics : request?.topics ?? [];
    for (const pattern of topics) {
      if (this.#held.has(pattern)) this.#confirmed.add(pattern);
    }
    this.#settleWaiting();
    if (request?.resume) {
      const recovered = request.since === undefined ? null : message.recovered === true;
      this.#emit("resumed", { patterns: topics, recovered });
      if (recovered !== true) {
        // Events may have gone by while away and the bridge cannot replay them.
        const reason = recovered === false ? "not_recovered" : "no_position";
        this.#emit("reset", { patterns: topics, reason });
      }
    }
  }

  /** Subscriptions whose every pattern is now confirmed hear that they are ready. */
  #settleWaiting() {
    for (const subscription of this.#subscriptions) {
      if (!subscription.settle) continue;
      for (const pattern of subscription.waiting) {
        if (this.#confirmed.has(pattern)) subscription.waiting.delete(pattern);
      }
      if (subscription.waiting.size === 0) {
        subscription.settle.resolve({ patterns: [...subscription.patterns] });
        subscription.settle = null;
      }
    }
  }

  #refused(message) {
    const request = this.#pending.get(message.ref);
    this.#pending.delete(message.ref);
    const code = typeof message.code === "string" ? message.code : "refused";
    const text = typeof message.message === "string" ? message.message : "the bridge refused a request";
    if (!request || request.type !== "subscribe") {
      this.#emit("error", new PushBridgeError(code, text));
      return;
    }
    if (request.resume && request.topics.length > 1) {
      // All or nothing: one pattern the bridge no longer allows (say, a refreshed token
      // with fewer topics) would cost every other one. Ask for each on its own.
      const extra = request.since !== undefined ? { since: request.since } : {};
      for (const pattern of request.topics) this.#request("subscribe", [pattern], extra, { resume: true });
      return;
    }
    // A refused subscribe: its owner ends; a refused resume: every subscription that
    // held the pattern ends.
    const error = new PushBridgeError(code, text, { patterns: request.topics });
    const ended = request.owner
      ? [request.owner]
      : [...this.#subscriptions].filter((s) => request.topics.some((p) => s.patterns.has(p)));
    for (const subscription of ended) {
      if (!this.#subscriptions.has(subscription)) continue;
      subscription.settle?.reject(error);
      subscription.settle = null;
      this.#unsubscribe(subscription);
    }
    this.#emit("error", error);
  }

  /** Drops `patterns` from `subscription`'s count; returns those no longer held by anyone. */
  #forget(subscription, patterns) {
    const released = [];
    for (const pattern of patterns) {
      if (!subscription.patterns.delete(pattern)) continue;
      const count = (this.#held.get(pattern) ?? 1) - 1;
      if (count > 0) this.#held.set(pattern, count);
      else {
        this.#held.delete(pattern);
        released.push(pattern);
      }
    }
    return released;
  }

  #unsubscribe(subscription, some) {
    if (!this.#subscriptions.has(subscription)) return;
    const patterns = some === undefined ? [...subscription.patterns] : typeof some === "string" ? [some] : [...some];
    const released = this.#forget(subscription, patterns);
    if (subscription.patterns.size === 0) {
      this.#subscriptions.delete(subscription);
      subscription.settle?.reject(new PushBridgeError("unsubscribed", "unsubscribed before the bridge answered"));
      subscription.settle = null;
    }
    // The bridge holds the confirmed ones and those whose subscribe is still on its way
    // (it answers in order).
    const asked = new Set([...this.#pending.values()].filter((r) => r.type === "subscribe").flatMap((r) => r.topics));
    const held = released.filter((p) => this.#confirmed.delete(p) || asked.has(p));
    if (this.#session !== null && held.length) this.#request("unsubscribe", held, {});
  }
}
