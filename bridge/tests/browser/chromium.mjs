// What the browser drivers (live_page.mjs, client_js.mjs) share: Debian's headless
// Chromium started the same way, a page whose console errors and uncaught exceptions
// are collected (a test fails on any it did not expect), the lines the Rust test
// writes on stdin, and a bound on the whole run, so that nothing waits forever.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

/** The default bound of one wait in the page. */
export const WAIT = 15_000;

/** The environment variable `name`; throws when it is not set. */
export function env(name) {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

/** Ends the process with status 3 after `ms`, whatever hangs. */
export function giveUpAfter(ms, script) {
  setTimeout(() => {
    console.error(`${script}: gave up after ${ms / 1000} s`);
    process.exit(3);
  }, ms).unref();
}

/** Starts Debian's Chromium (CHROMIUM, default /usr/bin/chromium), never a downloaded one. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: 30_000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/** Chromium's console line for each refused or cut WebSocket attempt. */
export const SOCKET_FAILED = /^WebSocket connection to .* failed/;

/**
 * Opens a page in `browser` whose console errors and uncaught exceptions go to
 * `problems`, but those `expected(text)` accepts.
 */
export async function newPage(browser, problems, expected = () => false) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  page.setDefaultTimeout(WAIT);
  page.on("console", (m) => {
    if (m.type() === "error" && !expected(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return page;
}

/** The lines the Rust test writes on stdin, one at a time. */
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** The next line on stdin, within `ms`. */
export async function nextLine(what, ms = WAIT) {
  let timer;
  const next = await Promise.race([
    stdin.next(),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} on stdin`)), ms))),
  ]).finally(() => clearTimeout(timer));
  if (next.done) throw new Error(`stdin ended before ${what}`);
  return next.value.trim();
}

/** Waits for the line `expected` on stdin. */
export async function expectLine(expected, ms = WAIT) {
  const line = await nextLine(`"${expected}"`, ms);
  if (line !== expected) throw new Error(`wanted "${expected}" on stdin, got ${JSON.stringify(line)}`);
}
