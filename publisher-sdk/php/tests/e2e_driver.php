<?php
// End-to-end driver for bridge/tests/sdk_clients.rs (the same in every language):
//
//   php e2e_driver.php ENDPOINT EVENTS_JSON
//
// EVENTS_JSON is a list of {"topic", "data" or "data_json", optional "id"}. Publishes
// each on one Publisher connected to ENDPOINT, printing one JSON line per event,
// {"id": ...} or {"error": kind, "reason": ..., "message": ...}, then {"closed": flushed}.

declare(strict_types=1);

require __DIR__ . '/../src/Publisher.php';

use PushBridge\PublishError;
use PushBridge\Publisher;

[, $endpoint, $events] = $argv;
$publisher = new Publisher($endpoint);
// Objects stay objects ({} is not []), as a PHP publisher would build them.
foreach (json_decode($events, false, 512, JSON_THROW_ON_ERROR) as $event) {
    try {
        $id = property_exists($event, 'data_json')
            ? $publisher->publishJson($event->topic, $event->data_json, $event->id ?? null)
            : $publisher->publish($event->topic, $event->data, $event->id ?? null);
        $line = ['id' => $id];
    } catch (PublishError $e) {
        $line = ['error' => $e->kind, 'reason' => $e->reason, 'message' => $e->getMessage()];
    }
    echo json_encode($line, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
}
echo json_encode(['closed' => $publisher->close(5000)]), "\n";
