// The example dashboard's script (index.html next to it): push-bridge-client in a page.
// `?bridge=` is the bridge's WebSocket URL, `?token=` the token and `?topics=` the
// patterns to follow, comma-separated (default `*`). A real application would get its
// token from its own backend with `getToken` instead of its URL.
//
// Event data is shown with textContent only: it comes from publishers, and markup in
// it must stay text, never become elements.
import { connect } from "../../clients/js/src/index.js";

/** The newest events shown; older ones leave the list (the counter keeps counting). */
const SHOWN = 100;

const params = new URLSearchParams(location.search);
const stateBadge = document.getElementById("state");
const counter = document.getElementById("count");
const topicsLine = document.getElementById("topics");
const notice = document.getElementById("notice");
const errorLine = document.getElementById("error");
const events = document.getElementById("events");

/** Shows the latest error, until the connection is open again. */
function showError(code, message) {
  errorLine.dataset.code = code;
  errorLine.textContent = `${code}: ${message}`;
  errorLine.hidden = false;
}

const bridgeUrl = params.get("bridge");
const token = params.get("token");
const topics = (params.get("topics") || "*").split(",").map((t) => t.trim()).filter(Boolean);

if (!bridgeUrl || !token) {
  stateBadge.dataset.state = "closed";
  stateBadge.textContent = "not configured";
  showError("usage", "open this page with ?bridge=ws://host:port/&token=… (and optionally &topics=a,b:*)");
} else {
  const bridge = connect(bridgeUrl, { token });
  topicsLine.textContent = `Following ${topics.join(", ")} on ${bridgeUrl}`;

  bridge.on("state", (state) => {
    stateBadge.dataset.state = state;
    stateBadge.textContent = state;
    if (state === "open") errorLine.hidden = true;
  });

  // The client stops for good only on errors it cannot get past (`fatal`), such as a
  // revoked token; after the others it goes on retrying.
  bridge.on("error", (error) => {
    showError(error.code, error.message + (error.fatal ? " (stopped)" : ""));
  });

  // Events went by that the bridge cannot replay: what the page shows may be stale.
  // A real dashboard would refetch its data from its API here.
  bridge.on("reset", () => {
    notice.dataset.resets = String(Number(notice.dataset.resets) + 1);
    notice.textContent = "Some events were missed while disconnected: refetching the latest state.";
    notice.hidden = false;
  });

  const unsubscribe = bridge.subscribe(topics, (event) => {
    const item = document.createElement("li");
    item.dataset.id = event.id;
    const topic = document.createElement("span");
    topic.className = "topic";
    topic.textContent = event.topic;
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = event.id;
    const data = document.createElement("pre");
    data.textContent = JSON.stringify(event.data);
    item.append(topic, id, data);
    events.prepend(item);
    if (events.children.length > SHOWN) events.lastElementChild.remove();
    const count = Number(counter.dataset.count) + 1;
    counter.dataset.count = String(count);
    counter.textContent = String(count);
  });
  unsubscribe.ready.then(
    () => (topicsLine.dataset.subscribed = "true"),
    () => (topicsLine.dataset.subscribed = "false"),
  );
}
