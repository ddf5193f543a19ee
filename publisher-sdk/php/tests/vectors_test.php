<?php
// Tests of PushBridge\Publisher with plain php-cli (no PHPUnit): the cross-language
// vectors (publisher-sdk/vectors.json), ids, and real sockets on loopback (a php-zmq
// PULL or SUB standing in for the bridge). Exits 1 if any check failed.
//
//   php publisher-sdk/php/tests/vectors_test.php

declare(strict_types=1);

require __DIR__ . '/../src/Publisher.php';

use PushBridge\PublishError;
use PushBridge\Publisher;

if (!extension_loaded('zmq')) {
    fwrite(STDERR, "the zmq extension is not loaded (apt-get install php-zmq)\n");
    exit(2);
}

$passed = 0;
$failed = 0;

function check(bool $ok, string $what): void
{
    global $passed, $failed;
    if ($ok) {
        $passed++;
    } else {
        $failed++;
        fwrite(STDERR, "FAIL: $what\n");
    }
}

/** Runs $call, which must throw PublishError; returns it (or null, counted as a failure). */
function refused(callable $call, string $what): ?PublishError
{
    try {
        $call();
    } catch (PublishError $e) {
        return $e;
    }
    check(false, "$what: nothing was thrown");
    return null;
}

function expected(object $case): array
{
    $frames = array_map('hex2bin', $case->frames_hex);
    check($frames === $case->frames, "{$case->name}: frames and frames_hex agree");
    return $frames;
}

/** A PULL standing in for the bridge, on a free loopback port. */
function pull(ZMQContext $context): array
{
    $socket = $context->getSocket(ZMQ::SOCKET_PULL);
    $socket->setSockOpt(ZMQ::SOCKOPT_LINGER, 0);
    $socket->setSockOpt(ZMQ::SOCKOPT_RCVTIMEO, 5000);
    $socket->bind('tcp://127.0.0.1:*');
    return [$socket, (string) $socket->getSockOpt(ZMQ::SOCKOPT_LAST_ENDPOINT)];
}

$vectors = json_decode(
    (string) file_get_contents(__DIR__ . '/../../vectors.json'),
    false,
    512,
    JSON_THROW_ON_ERROR,
);
check(Publisher::DEFAULT_MAX_MESSAGE_BYTES === $vectors->max_message_bytes, 'the default limit matches');

// encode: native data (decoded as stdClass, so {} stays an object) → the exact frames.
check(count($vectors->encode) > 10, 'encode vectors present');
foreach ($vectors->encode as $case) {
    try {
        $frames = Publisher::encode($case->topic, $case->data, $case->id);
        check($frames === expected($case), "encode: {$case->name}");
    } catch (PublishError $e) {
        check(false, "encode: {$case->name}: {$e->getMessage()}");
    }
}

// encode_json: JSON text → sent byte for byte.
check(count($vectors->encode_json) > 3, 'encode_json vectors present');
foreach ($vectors->encode_json as $case) {
    try {
        $frames = Publisher::encodeJson($case->topic, $case->data_json, $case->id);
        check($frames === expected($case), "encode_json: {$case->name}");
    } catch (PublishError $e) {
        check(false, "encode_json: {$case->name}: {$e->getMessage()}");
    }
}

// reject: the error kind (and topic rule) of each one-defect input.
check(count($vectors->reject) > 50, 'reject vectors present');
foreach ($vectors->reject as $case) {
    $reason = $case->reason ?? null;
    $calls = [];
    if (property_exists($case, 'data_json')) {
        $calls['json'] = fn () => Publisher::encodeJson($case->topic, $case->data_json, $case->id);
    }
    if (property_exists($case, 'data')) {
        $calls['data'] = fn () => Publisher::encode($case->topic, $case->data, $case->id);
    }
    check($calls !== [], "reject: {$case->name}: has data or data_json");
    foreach ($calls as $path => $call) {
        $e = refused($call, "reject ($path): {$case->name}");
        if ($e !== null) {
            check(
                $e->kind === $case->error && $e->reason === $reason,
                "reject ($path): {$case->name}: got {$e->kind}/{$e->reason}: {$e->getMessage()}",
            );
        }
    }
}

// limits: every frame counts, in bytes.
foreach ($vectors->limits as $case) {
    $limit = $case->max_message_bytes ?? $vectors->max_message_bytes;
    $call = property_exists($case, 'data_json')
        ? fn () => Publisher::encodeJson($case->topic, $case->data_json, $case->id, $limit)
        : fn () => Publisher::encode($case->topic, str_repeat('x', $case->data_x), $case->id, $limit);
    if ($case->ok) {
        try {
            $frames = $call();
            check(array_sum(array_map('strlen', $frames)) === $case->size, "limits: {$case->name}: size");
        } catch (PublishError $e) {
            check(false, "limits: {$case->name}: {$e->getMessage()}");
        }
    } else {
        $e = refused($call, "limits: {$case->name}");
        check(
            $e !== null && $e->kind === 'too_large'
            && str_contains($e->getMessage(), "{$case->size} bytes, above the {$limit}-byte limit"),
            "limits: {$case->name}: too_large with the size",
        );
    }
}

// What a JSON vector cannot carry: PHP values with no JSON form, bytes that are not UTF-8.
foreach (['NAN' => NAN, 'INF' => INF, 'nested -INF' => [-INF], 'invalid UTF-8' => "\xff",
          'a resource' => STDIN] as $what => $data) {
    $e = refused(fn () => Publisher::encode('t', $data, 'i'), "unserializable $what");
    check($e?->kind === 'invalid_data', "unserializable $what: invalid_data");
}
$e = refused(fn () => Publisher::encode("a\xffb", 1, 'i'), 'topic that is not UTF-8');
check($e?->kind === 'invalid_topic' && $e->reason === 'not_utf8', 'topic that is not UTF-8: not_utf8');
check(str_contains((string) $e?->getMessage(), '0x61ff62'), 'a non-UTF-8 topic is shown in hex');
$e = refused(fn () => Publisher::encodeJson('t', "\"\xff\"", 'i'), 'JSON text that is not UTF-8');
check($e?->kind === 'invalid_data', 'JSON text that is not UTF-8: invalid_data');
$e = refused(fn () => Publisher::encode('a b', 1, 'i'), 'message');
check(
    $e?->getMessage() === 'invalid topic "a b": it contains whitespace or a control character',
    'the message names the topic and the rule',
);
check(Publisher::encode('t', [], 'i')[2] === '[]' && Publisher::encode('t', (object) [], 'i')[2] === '{}',
    'an empty array is [], an empty object {}');
check(Publisher::encode('t', 1.0, 'i')[2] === '1.0', 'a float stays a float');

// Ids: UUIDv7 text, the current time, strictly increasing.
$before = (int) floor(microtime(true) * 1000);
$id = Publisher::newEventId();
$after = (int) floor(microtime(true) * 1000);
$uuid7 = '/\A[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/';
check(preg_match($uuid7, $id) === 1, "id $id is a lowercase UUIDv7");
$ms = hexdec(str_replace('-', '', substr($id, 0, 13)));
check($ms >= $before && $ms <= $after, 'the id carries the current millisecond');
$ids = [];
for ($i = 0; $i < 20000; $i++) {
    $ids[] = Publisher::newEventId();
}
$increasing = true;
for ($i = 1; $i < count($ids); $i++) {
    $increasing = $increasing && strcmp($ids[$i - 1], $ids[$i]) < 0;
}
check($increasing, 'ids strictly increase, even within a millisecond');
check(count(array_unique($ids)) === 20000, 'ids are unique');

// Real sockets: PUSH → PULL carries exactly the vector frames.
$context = new ZMQContext(1, false);
[$peer, $endpoint] = pull($context);
$publisher = new Publisher($endpoint);
foreach (array_slice($vectors->encode, 0, 5) as $case) {
    check($publisher->publish($case->topic, $case->data, $case->id) === $case->id, "publish returns the given id");
    check($peer->recvMulti() === expected($case), "on the wire: {$case->name}");
}
$id = $publisher->publish('news:sport', ['score' => [2, 1]]);
check(preg_match($uuid7, $id) === 1, 'publish returns a new UUIDv7');
check($peer->recvMulti() === ['news:sport', $id, '{"score":[2,1]}'], 'generated id on the wire');
$id = $publisher->publishJson('t', '{ "a" : 1 }');
check($peer->recvMulti() === ['t', $id, '{ "a" : 1 }'], 'JSON text on the wire as-is');
check(refused(fn () => $publisher->publish('news:*', 1), 'publish a pattern') !== null, 'a refused publish throws');
$publisher->publish('after', 1, 'x');
check($peer->recvMulti()[0] === 'after', 'nothing was sent for the refused event');
$started = hrtime(true);
check($publisher->close(5000), 'close reports delivered events');
check((hrtime(true) - $started) / 1e6 < 4000, 'close returns once delivered');
check($publisher->close(), 'closing twice does nothing');
$e = refused(fn () => $publisher->publish('t', 1), 'publish after close');
check($e?->kind === 'closed', 'publish after close: closed');

// PUB: binds, subscribers get what matches their prefix.
$pub = new Publisher('tcp://127.0.0.1:*', ['bind_pub' => true]);
check(preg_match('#\Atcp://127\.0\.0\.1:\d+\z#', $pub->endpoint) === 1, "PUB endpoint {$pub->endpoint}");
$sub = $context->getSocket(ZMQ::SOCKET_SUB);
$sub->setSockOpt(ZMQ::SOCKOPT_LINGER, 0);
$sub->connect($pub->endpoint);
$sub->setSockOpt(ZMQ::SOCKOPT_SUBSCRIBE, 'news');
// A PUB drops what it sends before the subscription arrives: probe until one lands.
$deadline = microtime(true) + 5;
$got = false;
while (!$got && microtime(true) < $deadline) {
    $pub->publish('news:probe', 0);
    usleep(20000);
    $got = $sub->recvMulti(ZMQ::MODE_DONTWAIT) !== false;
}
check($got, 'the SUB received a probe');
usleep(50000);
while ($sub->recvMulti(ZMQ::MODE_DONTWAIT) !== false) {
}
$id = $pub->publish('news:world', ['n' => 1]);
$pub->publish('other', 2);
$sub->setSockOpt(ZMQ::SOCKOPT_RCVTIMEO, 5000);
check($sub->recvMulti() === ['news:world', $id, '{"n":1}'], 'PUB → SUB frames');
$sub->setSockOpt(ZMQ::SOCKOPT_RCVTIMEO, 100);
check($sub->recvMulti() === false, 'filtered by prefix');
check($pub->close(), 'PUB closes');

// A bridge that is down: the queue fills, then publish waits the send timeout and fails.
$down = new Publisher('tcp://127.0.0.1:1', ['send_hwm' => 2, 'send_timeout_ms' => 50, 'linger_ms' => 0]);
$started = hrtime(true);
$e = null;
for ($i = 0; $i < 100 && $e === null; $i++) {
    try {
        $down->publish('t', $i);
    } catch (PublishError $caught) {
        $e = $caught;
    }
}
$elapsedMs = (hrtime(true) - $started) / 1e6;
check($e?->kind === 'queue_full', 'a full queue: queue_full');
check(str_contains((string) $e?->getMessage(), 'is full (2 messages)'), 'the message names the queue length');
check($elapsedMs >= 45 && $elapsedMs < 2000, "the send timeout was waited ($elapsedMs ms)");
check($down->close(), 'a zero linger discards by request');

// close() is bounded and says when queued events were left behind.
$down = new Publisher('tcp://127.0.0.1:1');
$down->publish('t', 1);
$started = hrtime(true);
check($down->close(200) === false, 'close reports events nobody took');
$elapsedMs = (hrtime(true) - $started) / 1e6;
check($elapsedMs >= 190 && $elapsedMs < 2000, "close waited the linger ($elapsedMs ms)");

// Bad endpoints and options are clear errors.
$e = refused(fn () => new Publisher('bogus://x'), 'connect to a bad endpoint');
check($e?->kind === 'connect' && str_contains($e->getMessage(), '"bogus://x"'), 'connect error names the endpoint');
$e = refused(fn () => new Publisher('tcp://192.0.2.1:5556', ['bind_pub' => true]), 'bind a foreign address');
check($e?->kind === 'bind', 'bind error');
try {
    new Publisher('tcp://127.0.0.1:1', ['linger' => 1]);
    check(false, 'an unknown option is refused');
} catch (InvalidArgumentException $e) {
    check(str_contains($e->getMessage(), 'linger'), 'an unknown option is named');
}

echo "php-publisher: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
