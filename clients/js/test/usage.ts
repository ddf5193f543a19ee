// Compiled (never run) by `tsc -p test` in scripts/test: the type declarations describe
// the API the way a TypeScript dashboard uses it. A wrong declaration fails the build.
import { connect, PushBridgeError, type PushEvent, type State } from "push-bridge-client";

interface ArticleChanged {
  id: number;
  headline: string;
}

const bridge = connect("wss://push.example.com/", {
  getToken: async () => (await fetch("/api/push-token")).text(),
  backoff: { max: 10_000 },
});
const unsubscribe = bridge.subscribe<ArticleChanged>(["article:*"], (event: PushEvent<ArticleChanged>) => {
  const headline: string = event.data.headline;
  const topic: string = event.topic;
  console.log(topic, event.id, headline);
});
unsubscribe.ready.then(({ patterns }) => console.log("subscribed to", patterns.join(", ")));
unsubscribe.ready.catch((error: PushBridgeError) => console.log(error.code, error.patterns));
unsubscribe("article:*");
unsubscribe();

const offState = bridge.on("state", (state: State, details) => {
  if (state === "reconnecting") console.log(`again in ${details.delay} ms after close ${details.code}`);
});
offState();
bridge.on("reset", ({ patterns, reason }) => console.log("refetch", patterns, reason));
bridge.on("resumed", ({ recovered }) => console.log(recovered === null ? "nothing to resume" : recovered));
bridge.on("error", (error) => {
  if (error.fatal) console.log(error.code, error.closeCode, error.message);
});
const last: string | null = bridge.lastEventId;
console.log(last, bridge.state, bridge.session);
bridge.reconnect();
bridge.close();

// @ts-expect-error: there is no such event
bridge.on("message", () => {});
// @ts-expect-error: a token or getToken is a string
connect("ws://127.0.0.1:8080/", { token: 42 });
