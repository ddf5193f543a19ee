<?php
// Superdesk Publisher 2.x's producer side over AMQP 0-9-1: what GosWebSocketBundle's
// AMQP pusher (gos_web_socket.pushers.amqp, with Publisher's queue_name swp_websocket
// and exchange_name swp_websocket_exchange) does through the PHP amqp extension.
//
//   php amqp_pusher.php HOST PORT COUNT [PER_SECOND] [persistent|transient] [FIRST]
//
// What the bundle does, and so this script too:
// - declares the exchange swp_websocket_exchange, type direct, durable, and the queue
//   swp_websocket, durable (the bundle's AmqpConnectionFactory / Utils::setupConnection);
// - publishes each message with the routing key null, i.e. "" (AmqpPusher::doPush with
//   no routing_key in its context).
// The bundle declares no binding: Publisher's install guide has the operator bind the
// queue with `rabbitmqadmin declare binding source="swp_websocket_exchange"
// destination="swp_websocket"`, whose routing key defaults to "". This script makes
// that same binding (key ""), so a direct exchange routes the pusher's "" to the queue.
//
// Delivery mode: the bundle passes no attributes unless the application gives some in
// the push context, so its messages are transient (lost when the broker restarts).
// `persistent` (the default here) sets delivery_mode 2, as an application passing
// ['attributes' => ['delivery_mode' => 2]] would; `transient` is the bundle's default.
//
// Sends COUNT messages, PER_SECOND a second (0: as fast as possible), numbered from
// FIRST (default 0):
//   {"topic":"package_created","data":{"package":{"id":N},"state":"create"}}
// (the envelope GosWebSocketBundle's pushers send for Publisher's package listener).
// Unlike the bundle, it puts the channel in confirm mode and waits for the broker's
// confirms before it exits, so when it exits 0 every message is in the queue; it then
// prints the number of messages confirmed.

if (!extension_loaded('amqp')) {
    fwrite(STDERR, "the amqp extension is not loaded (apt-get install php-amqp)\n");
    exit(2);
}
if ($argc < 4 || $argc > 7) {
    fwrite(STDERR, "usage: php amqp_pusher.php HOST PORT COUNT [PER_SECOND] [persistent|transient] [FIRST]\n");
    exit(2);
}
[$host, $port, $count] = [$argv[1], (int) $argv[2], (int) $argv[3]];
$perSecond = (float) ($argv[4] ?? 0);
$mode = $argv[5] ?? 'persistent';
$first = (int) ($argv[6] ?? 0);
if ($mode !== 'persistent' && $mode !== 'transient') {
    fwrite(STDERR, "the delivery mode is persistent or transient, not $mode\n");
    exit(2);
}

// The bundle's connection settings: guest on the default vhost, no timeouts.
$connection = new AMQPConnection([
    'host' => $host,
    'port' => $port,
    'login' => 'guest',
    'password' => 'guest',
    'vhost' => '/',
]);
$connection->connect();
$channel = new AMQPChannel($connection);

$exchange = new AMQPExchange($channel);
$exchange->setName('swp_websocket_exchange');
$exchange->setType(AMQP_EX_TYPE_DIRECT);
$exchange->setFlags(AMQP_DURABLE);
$exchange->declareExchange();

$queue = new AMQPQueue($channel);
$queue->setName('swp_websocket');
$queue->setFlags(AMQP_DURABLE);
$queue->declareQueue();
// The operator's binding from Publisher's install guide (routing key "").
$queue->bind('swp_websocket_exchange', '');

$channel->confirmSelect();
$attributes = $mode === 'persistent' ? ['delivery_mode' => 2] : [];
$started = microtime(true);
for ($n = 0; $n < $count; $n++) {
    if ($perSecond > 0) {
        $wait = $started + $n / $perSecond - microtime(true);
        if ($wait > 0) {
            usleep((int) ($wait * 1e6));
        }
    }
    $body = json_encode([
        'topic' => 'package_created',
        'data' => ['package' => ['id' => $first + $n], 'state' => 'create'],
    ]);
    $exchange->publish($body, null, AMQP_NOPARAM, $attributes);
}

// Every publish is acked (a nack or a timeout throws).
$confirmed = 0;
$channel->setConfirmCallback(
    function (int $tag, bool $multiple) use (&$confirmed, $count): bool {
        $confirmed = $tag;
        return $confirmed < $count;
    },
    function (int $tag, bool $multiple, bool $requeue): bool {
        throw new RuntimeException("the broker nacked message $tag");
    }
);
if ($count > 0) {
    $channel->waitForConfirm(10.0);
}
$connection->disconnect();
echo "$confirmed\n";
