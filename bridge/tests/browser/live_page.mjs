// Drives the live page at `/` in Debian's headless Chromium for bridge/tests/live_page.rs.
//
// The Rust test starts the bridge and this script, then talks to it in lines: this
// script prints `subscribed` once the page holds a subscription, and the test
// publishes the first event. Then, by LIVE_MODE:
// - `resume`: the script presses Disconnect and prints `disconnected`; the test
//   publishes the second event while the page is away and answers `published` on
//   stdin; on Connect the page must resume (`recovered`) and show it;
// - `restart`: the script prints `seen`; the test stops the bridge, the page must
//   show that it is reconnecting (the script prints `reconnecting`); the test starts
//   a new bridge on the same address, the page must reconnect by itself, subscribe
//   again and report `not recovered` (the new bridge has no history); the script
//   prints `resubscribed` and the test publishes the second event live;
// - `move` (cluster mode): as `restart`, but the bridge that comes back on the address
//   is another node of the same cluster, and an event was published to a third node
//   meanwhile: the page must reconnect by itself, resume (`recovered`), show that
//   event, and show the first event only once; the script prints `resumed`;
// - anything else: the page also subscribes to LIVE_TOPIC itself, so the first event
//   matches two subscriptions and must be shown once; then the script unsubscribes with
//   the chip's × and with the Unsubscribe button.
// Every wait is bounded; any failure exits non-zero with the reason on stderr.
//
// Environment: LIVE_URL (the page, with ?token= unless anonymous), LIVE_PATTERNS (typed
// into the form), LIVE_TOPIC, LIVE_UNIQUE1, LIVE_UNIQUE2 (the published events), LIVE_MODE,
// LIVE_SCREENSHOT (a PNG path), CHROMIUM (default /usr/bin/chromium).
import { env, expectLine, giveUpAfter, launch, newPage, SOCKET_FAILED } from "./chromium.mjs";

const url = env("LIVE_URL");
const topic = env("LIVE_TOPIC");
const mode = process.env.LIVE_MODE || "simple";

// The whole run is bounded too, whatever hangs.
giveUpAfter(90_000, "live_page.mjs");

const problems = [];
const browser = await launch();
try {
  // A CSP refusal or a script error shows up as a problem: the page must run without
  // either. (While the bridge is down in `restart`, Chromium reports each refused attempt.)
  const page = await newPage(browser, problems, (text) => (mode === "restart" || mode === "move") && SOCKET_FAILED.test(text));
  const eventWith = (text) => page.locator("#events li").filter({ hasText: text });

  await page.goto(url);
  await page.locator('#state[data-state="open"]').waitFor();

  // A pattern the bridge refuses: the error answer is shown and nothing is subscribed.
  await page.fill("#patterns", "not*a-pattern");
  await page.click("#subscribe");
  await page.locator('#answer[data-kind="error"]').filter({ hasText: "bad_request" }).waitFor();

  await page.fill("#patterns", env("LIVE_PATTERNS"));
  await page.click("#subscribe");
  await page.locator('#answer[data-kind="subscribed"]').waitFor();
  const simple = !["resume", "restart", "move"].includes(mode);
  if (simple) {
    await page.fill("#patterns", topic);
    await page.click("#subscribe");
    await page.locator("#answer").filter({ hasText: `Subscribed to ${topic}` }).waitFor();
  }
  console.log("subscribed");

  const first = eventWith(env("LIVE_UNIQUE1"));
  await first.waitFor();
  if ((await first.locator(".topic").textContent()) !== topic) throw new Error("the event shows the wrong topic");
  // Event data is text: markup in it stays visible as written and never becomes an element.
  const shown = await first.locator("pre").textContent();
  if (!shown.includes("<img src=x")) throw new Error(`the data is not shown as text: ${shown}`);
  if ((await page.locator("#events img").count()) !== 0) throw new Error("event data became markup");
  if (await page.evaluate(() => window.injected !== undefined)) throw new Error("event data ran as script");

  if (simple) {
    if ((await first.count()) !== 1) throw new Error("an event of two subscriptions is shown twice");
    await page.click(`#subs button[title="Unsubscribe from ${topic}"]`);
    await page.locator('#answer[data-kind="unsubscribed"]').filter({ hasText: topic }).waitFor();
    await page.fill("#patterns", "");
    await page.click("#unsubscribe");
    await page.locator("#subs:empty").waitFor();
  }

  if (mode === "restart") {
    console.log("seen");
    await page.locator('#state[data-state="reconnecting"]').waitFor();
    await page.screenshot({ path: env("LIVE_SCREENSHOT").replace(/\.png$/, "-reconnecting.png") });
    console.log("reconnecting");
    // No button pressed: the page comes back on its own, within its backoff.
    await page.locator('#answer[data-kind="subscribed"][data-recovered="false"]').waitFor({ timeout: 30_000 });
    if (!(await page.locator("#answer").textContent()).includes("not recovered")) throw new Error("no 'not recovered' shown");
    await page.locator('#state[data-state="open"]').waitFor();
    console.log("resubscribed");
    await eventWith(env("LIVE_UNIQUE2")).waitFor();
  }

  if (mode === "move") {
    console.log("seen");
    await page.locator('#state[data-state="reconnecting"]').waitFor();
    console.log("reconnecting");
    await page.locator('#answer[data-kind="subscribed"][data-recovered="true"]').waitFor({ timeout: 30_000 });
    await page.locator('#state[data-state="open"]').waitFor();
    await eventWith(env("LIVE_UNIQUE2")).waitFor();
    if ((await eventWith(env("LIVE_UNIQUE1")).count()) !== 1) throw new Error("the first event is shown twice");
    if ((await eventWith(env("LIVE_UNIQUE2")).count()) !== 1) throw new Error("the missed event is shown twice");
    console.log("resumed");
  }

  if (mode === "resume") {
    await page.click("#toggle");
    await page.locator('#state[data-state="closed"]').waitFor();
    console.log("disconnected");
    await expectLine("published");
    await page.click("#toggle");
    await page.locator('#answer[data-kind="subscribed"][data-recovered="true"]').waitFor();
    await eventWith(env("LIVE_UNIQUE2")).waitFor();
    // Newest first.
    if (!(await page.locator("#events li").first().textContent()).includes(env("LIVE_UNIQUE2"))) {
      throw new Error("the replayed event is not on top");
    }
  }

  if (problems.length) throw new Error(problems.join("\n"));
  await page.screenshot({ path: env("LIVE_SCREENSHOT"), fullPage: true });
  console.log("done");
} catch (error) {
  console.error(`live_page.mjs: ${error.stack || error}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
