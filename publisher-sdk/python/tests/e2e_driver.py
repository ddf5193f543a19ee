"""End-to-end driver for bridge/tests/sdk_clients.rs (the same in every language):

    python3 e2e_driver.py ENDPOINT EVENTS_JSON

EVENTS_JSON is a list of {"topic", "data" or "data_json", optional "id"}. Publishes each
on one Publisher connected to ENDPOINT, printing one JSON line per event, {"id": ...}
or {"error": kind, "reason": ..., "message": ...}, then {"closed": flushed}."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from push_bridge_publisher import PublishError, Publisher  # noqa: E402


def main(endpoint, events):
    publisher = Publisher(endpoint)
    for event in json.loads(events):
        try:
            if "data_json" in event:
                event_id = publisher.publish_json(event["topic"], event["data_json"], id=event.get("id"))
            else:
                event_id = publisher.publish(event["topic"], event["data"], id=event.get("id"))
            print(json.dumps({"id": event_id}), flush=True)
        except PublishError as e:
            print(json.dumps({"error": e.kind, "reason": e.reason, "message": str(e)}), flush=True)
    print(json.dumps({"closed": publisher.close(linger=5)}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[-2:])
