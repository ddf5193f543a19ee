// End-to-end driver for bridge/tests/sdk_clients.rs (the same in every language):
//
//   node e2e_driver.js ENDPOINT EVENTS_JSON
//
// EVENTS_JSON is a list of {"topic", "data" or "data_json", optional "id"}. Publishes
// each on one Publisher connected to ENDPOINT, printing one JSON line per event,
// {"id": ...} or {"error": kind, "reason": ..., "message": ...}, then {"closed": true}
// (Node cannot tell whether the queue drained; the process lingers until it has).
"use strict";

const { PublishError, Publisher } = require("../push-bridge-publisher.js");

async function main(endpoint, events) {
  const publisher = new Publisher(endpoint);
  for (const event of JSON.parse(events)) {
    try {
      const id =
        "data_json" in event
          ? await publisher.publishJson(event.topic, event.data_json, event.id)
          : await publisher.publish(event.topic, event.data, event.id);
      console.log(JSON.stringify({ id }));
    } catch (e) {
      if (!(e instanceof PublishError)) throw e;
      console.log(JSON.stringify({ error: e.kind, reason: e.reason, message: e.message }));
    }
  }
  await publisher.close(5000);
  console.log(JSON.stringify({ closed: true }));
}

main(...process.argv.slice(-2)).catch((e) => {
  console.error(e);
  process.exit(1);
});
