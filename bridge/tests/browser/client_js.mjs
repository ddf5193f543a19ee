// Drives push-bridge-client (clients/js/src/index.js) in Debian's headless Chromium for
// bridge/tests/client_js.rs. The page comes from a plain static server of the
// repository root (CLIENT_ORIGIN, `python3 -m http.server`), as a reader would serve it:
// - CLIENT_MODE=dashboard: the example page examples/dashboard/, as a user opens it;
// - CLIENT_MODE=library: a page of that origin imports the library with `import()` and
//   records every event it delivers, every state, error, reset and resume, and the
//   worst lag of a 50 ms timer (how long the page's main thread was busy).
// With CLIENT_PROXY=1 the page reaches the bridge through a TCP proxy of this script,
// which the test can cut; with CLIENT_JWT_SECRET the page's getToken mints a fresh HS256
// JWT (counting the calls): the first CLIENT_JWT_SHORT of them valid CLIENT_JWT_TTL
// seconds, later ones an hour, so that the count is settled when the test reads it.
//
// This script prints `ready` once the page's subscription to CLIENT_TOPIC is confirmed,
// then obeys the test's lines on stdin, each answered with one line:
//   wait <n>        → `received` once the page got at least n events
//   cut <ms>        → `restored`: every proxied connection is cut, new ones are refused
//                     for ms, then let through again
//   closed          → `closed` once the client stopped (state `closed`)
//   notice          → `notice` once the dashboard shows its refetch notice
//   pause <ms>      → `paused` after ms (the test then checks that nothing happened)
//   result          → `result <JSON>` a second later (so late duplicates count), and exits
// Events carry `{"seq": n}`; the test checks the order and duplicates in the result.
// Every wait is bounded; any failure (a console error included, but Chromium's own line
// for a refused WebSocket when CLIENT_OUTAGES=1) exits non-zero with the reason on stderr.
//
// Environment: CLIENT_MODE, CLIENT_ORIGIN, CLIENT_BRIDGE (ws://host:port/), CLIENT_TOPIC,
// CLIENT_TOKEN or CLIENT_JWT_SECRET (+ CLIENT_JWT_TTL, CLIENT_JWT_SHORT), CLIENT_PROXY,
// CLIENT_OUTAGES, CLIENT_SCREENSHOT (a PNG of the page, taken before the result),
// CHROMIUM.
import { createHmac } from "node:crypto";
import net from "node:net";
import { env, giveUpAfter, launch, newPage, nextLine, SOCKET_FAILED, WAIT } from "./chromium.mjs";

/** The longest a `wait` may take: the test's own bound is longer. */
const EVENTS_WAIT = 45_000;
/** A `wait` fails when no event came for this long. */
const STALLED = 15_000;
/** Time given to late events before a result is taken: a duplicate is counted too. */
const SETTLE = 1_000;

const mode = env("CLIENT_MODE");
const origin = env("CLIENT_ORIGIN");
const topic = env("CLIENT_TOPIC");
let bridge = env("CLIENT_BRIDGE");
giveUpAfter(150_000, "client_js.mjs");

/** An HS256 JWT for the bridge's `[auth.jwt]`, expiring in `ttl` seconds. */
function mintJwt(secret, ttl) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: "dashboard", exp: Math.floor(Date.now() / 1000) + ttl })}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

/**
 * A TCP proxy on a free loopback port to `target` (`ws://host:port/`): `cut()` destroys
 * every connection and refuses (resets) new ones until `allow()`.
 */
async function startProxy(target) {
  const { hostname, port } = new URL(target);
  const open = new Set();
  let refusing = false;
  const proxy = { connections: 0, refused: 0 };
  const server = net.createServer((client) => {
    if (refusing) {
      proxy.refused++;
      client.resetAndDestroy();
      return;
    }
    proxy.connections++;
    const upstream = net.connect(Number(port), hostname);
    const pair = [client, upstream];
    const end = () => pair.forEach((s) => (s.destroy(), open.delete(s)));
    for (const socket of pair) {
      open.add(socket);
      socket.on("error", end).on("close", end);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  proxy.url = `ws://127.0.0.1:${server.address().port}/`;
  proxy.cut = () => {
    refusing = true;
    for (const socket of open) socket.destroy();
  };
  proxy.allow = () => (refusing = false);
  proxy.close = () => server.close();
  return proxy;
}

/**
 * Runs in the page (library mode): imports the library from the static server and
 * subscribes; what happens is recorded in `window.record`. Resolves once subscribed.
 */
async function startInPage({ bridge, token, topic, jwt }) {
  const { connect } = await import("/clients/js/src/index.js");
  const record = { seqs: [], ids: [], states: [], errors: [], resets: [], resumed: [], lag: { worst: 0, ticks: 0 } };
  window.record = record;
  const client = connect(bridge, jwt ? { getToken: () => window.mintToken() } : { token });
  window.client = client;
  client.on("state", (state, details) => record.states.push({ state, code: details.code ?? null }));
  client.on("error", (e) => record.errors.push({ code: e.code, fatal: e.fatal, closeCode: e.closeCode ?? null, message: e.message }));
  client.on("reset", (reset) => record.resets.push(reset));
  client.on("resumed", (resumed) => record.resumed.push(resumed));
  const unsubscribe = client.subscribe(topic, (event) => {
    record.seqs.push(event.data.seq);
    record.ids.push(event.id);
  });
  await unsubscribe.ready;
  // A 50 ms timer that cannot run on time means the main thread was busy: its worst
  // delay is how long the page could not answer its user.
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    record.lag.worst = Math.max(record.lag.worst, now - last - 50);
    record.lag.ticks++;
    last = now;
  }, 50);
}

const problems = [];
const browser = await launch();
let proxy = null;
try {
  const page = await newPage(browser, problems, (text) => process.env.CLIENT_OUTAGES === "1" && SOCKET_FAILED.test(text));
  let sockets = 0;
  page.on("websocket", () => sockets++);
  if (process.env.CLIENT_PROXY === "1") {
    proxy = await startProxy(bridge);
    bridge = proxy.url;
  }
  let tokenCalls = 0;
  const secret = process.env.CLIENT_JWT_SECRET;
  if (secret) {
    await page.exposeFunction("mintToken", () => {
      tokenCalls++;
      return mintJwt(secret, tokenCalls <= Number(env("CLIENT_JWT_SHORT")) ? Number(env("CLIENT_JWT_TTL")) : 3600);
    });
  }

  let count; // how many events the page has
  let result; // what the page did, for the test
  if (mode === "dashboard") {
    const query = new URLSearchParams({ bridge, token: env("CLIENT_TOKEN"), topics: topic });
    await page.goto(`${origin}/examples/dashboard/?${query}`);
    await page.locator('#topics[data-subscribed="true"]').waitFor();
    count = () => page.locator("#count").evaluate((e) => Number(e.dataset.count));
    result = () =>
      page.evaluate(() => {
        // Newest first on the page.
        const items = [...document.querySelectorAll("#events li")].reverse();
        return {
          seqs: items.map((li) => JSON.parse(li.querySelector("pre").textContent).seq),
          ids: items.map((li) => li.dataset.id),
          count: Number(document.getElementById("count").dataset.count),
          state: document.getElementById("state").dataset.state,
          resets: Number(document.getElementById("notice").dataset.resets),
          notice: document.getElementById("notice").hidden ? null : document.getElementById("notice").textContent,
          error: document.getElementById("error").hidden ? null : document.getElementById("error").dataset.code,
          // Event data is text: markup in it must never become elements, nor run.
          elements_from_data: document.querySelectorAll("#events pre *").length,
          injected: window.injected !== undefined,
        };
      });
  } else if (mode === "library") {
    // Any page of the static server's origin: the library is imported from there. Its
    // directory listing has no icon: the browser's request for one is no failure.
    await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
    await page.goto(`${origin}/clients/js/`);
    await page.evaluate(startInPage, { bridge, token: process.env.CLIENT_TOKEN, topic, jwt: Boolean(secret) });
    count = () => page.evaluate(() => window.record.seqs.length);
    result = () => page.evaluate(() => ({ ...window.record, state: window.client.state }));
  } else {
    throw new Error(`unknown CLIENT_MODE ${mode}`);
  }
  console.log("ready");

  /** Polls `check` every 50 ms until it holds, failing with `what()` after `ms`. */
  async function until(check, what, ms = EVENTS_WAIT) {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${await what()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  for (;;) {
    const [command, arg] = (await nextLine("a command", 120_000)).split(" ");
    if (command === "wait") {
      // Events that stop coming for STALLED will not come: the tests publish steadily,
      // and their reconnections take a few seconds at most.
      const wanted = Number(arg);
      let [seen, since] = [-1, Date.now()];
      await until(async () => {
        const now = await count();
        if (now !== seen) [seen, since] = [now, Date.now()];
        if (Date.now() - since > STALLED) throw new Error(`no new event for ${STALLED / 1000} s: the page has ${now} of ${wanted}`);
        return now >= wanted;
      }, async () => `the page has ${await count()} of ${wanted} events`);
      console.log("received");
    } else if (command === "cut") {
      if (!proxy) throw new Error("cut without CLIENT_PROXY=1");
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, Number(arg)));
      proxy.allow();
      console.log("restored");
    } else if (command === "closed") {
      const state = () => page.evaluate(() => window.client.state);
      await until(async () => (await state()) === "closed", async () => `the client is ${await state()}`, WAIT);
      console.log("closed");
    } else if (command === "notice") {
      await page.locator("#notice").waitFor({ state: "visible", timeout: EVENTS_WAIT });
      console.log("notice");
    } else if (command === "pause") {
      await new Promise((resolve) => setTimeout(resolve, Number(arg)));
      console.log("paused");
    } else if (command === "result") {
      // Events the test did not wait for (duplicates) would come within this.
      await new Promise((resolve) => setTimeout(resolve, SETTLE));
      if (problems.length) throw new Error(problems.join("\n"));
      if (process.env.CLIENT_SCREENSHOT) await page.screenshot({ path: process.env.CLIENT_SCREENSHOT, fullPage: true });
      const outcome = { ...(await result()), sockets, tokenCalls, proxy: proxy && { connections: proxy.connections, refused: proxy.refused } };
      console.log(`result ${JSON.stringify(outcome)}`);
      break;
    } else {
      throw new Error(`unknown command ${JSON.stringify(command)}`);
    }
  }
} catch (error) {
  console.error(`client_js.mjs: ${error.stack || error}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  proxy?.close();
  await browser.close();
  process.exit();
}
