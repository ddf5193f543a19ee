<?php
// Publish events to push-bridge over ZeroMQ (php-zmq), the PHP side of a publisher:
// a thin client with the same behaviour as the Rust SDK (publisher-sdk/) and the
// Python and Node clients. Each event is one ZeroMQ message of three frames
// [topic, id, data-json], checked before sending with the bridge's own rules
// (docs/publishing.md), so an event this class accepts is one the bridge accepts.
// publisher-sdk/vectors.json pins the exact frames; tests/vectors_test.php checks them.
//
//   $publisher = new \PushBridge\Publisher('tcp://127.0.0.1:5555');
//   $id = $publisher->publish('package_created', ['state' => 'create']);
//   $publisher->close();

declare(strict_types=1);

namespace PushBridge;

/**
 * Why a publish (or opening the publisher) failed. `kind` names the failure:
 * `invalid_topic` (then `reason` names the topic rule: empty, too_long,
 * bad_character, empty_segment, wildcard, not_utf8), `invalid_id`, `invalid_data`,
 * `too_large` (nothing was sent for any of these), `queue_full` (the bridge is down
 * or slow: the event was not queued, retry later with the same id), `connect`, `bind`,
 * `send` or `closed`.
 */
final class PublishError extends \RuntimeException
{
    public function __construct(
        public readonly string $kind,
        string $message,
        public readonly ?string $reason = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
    }
}

/**
 * A connection to push-bridge that publishes events.
 *
 * `new Publisher($endpoint)` opens a PUSH socket connected to the bridge's PULL
 * (`ingress.pull`); the option `bind_pub` binds a PUB socket instead, which bridges
 * subscribe to (`ingress.sub`). Connecting succeeds while the bridge is down: events
 * are queued, up to `send_hwm` messages, and leave when it comes back. A publish on a
 * full queue waits up to `send_timeout_ms`, then throws PublishError `queue_full`.
 * PUB never waits: events nobody subscribed to are dropped.
 */
final class Publisher
{
    public const DEFAULT_ENDPOINT = 'tcp://127.0.0.1:5555';
    /** The bridge's default ingress.max_message_bytes: all three frames together. */
    public const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
    public const MAX_TOPIC_BYTES = 256;
    public const MAX_ID_BYTES = 128;
    /** Deepest nesting of arrays and objects the bridge's JSON parser accepts. */
    public const MAX_JSON_DEPTH = 127;

    private const DEFAULTS = [
        'bind_pub' => false,
        'max_message_bytes' => self::DEFAULT_MAX_MESSAGE_BYTES,
        'send_hwm' => 1000,
        'send_timeout_ms' => 500,
        'linger_ms' => 2000,
    ];

    /** Compact JSON as the bridge writes it: no escaped "/" or non-ASCII, 1.0 stays 1.0. */
    private const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
        | JSON_UNESCAPED_LINE_TERMINATORS | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR;

    /**
     * Unicode White_Space and general category Cc, exactly the characters Rust's
     * char::is_whitespace / char::is_control reject in a topic.
     */
    private const BAD_TOPIC_CHARACTER =
        '/[\x{0}-\x{20}\x{7f}-\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]/u';

    private const TOPIC_REASONS = [
        'not_utf8' => 'is not valid UTF-8',
        'empty' => 'is empty',
        'too_long' => 'is longer than 256 bytes',
        'bad_character' => 'contains whitespace or a control character',
        'empty_segment' => "has an empty segment (leading, trailing or doubled ':')",
        'wildcard' => "contains '*', which only patterns may use, as a whole segment",
    ];

    /** Last millisecond and counter of newEventId(), so ids made here always increase. */
    private static int $idMs = 0;
    private static int $idCounter = 0;

    public readonly string $endpoint;
    public readonly int $maxMessageBytes;
    private ?\ZMQContext $context;
    private ?\ZMQSocket $socket;
    private readonly int $lingerMs;
    private readonly int $sendHwm;
    private readonly int $sendTimeoutMs;

    /**
     * @param array{bind_pub?: bool, max_message_bytes?: int, send_hwm?: int,
     *              send_timeout_ms?: int, linger_ms?: int} $options
     */
    public function __construct(string $endpoint = self::DEFAULT_ENDPOINT, array $options = [])
    {
        $unknown = array_diff(array_keys($options), array_keys(self::DEFAULTS));
        if ($unknown !== []) {
            throw new \InvalidArgumentException('unknown Publisher option(s): ' . implode(', ', $unknown));
        }
        $o = $options + self::DEFAULTS;
        $this->maxMessageBytes = (int) $o['max_message_bytes'];
        $this->lingerMs = max(0, (int) $o['linger_ms']);
        $this->sendHwm = (int) $o['send_hwm'];
        $this->sendTimeoutMs = max(0, (int) $o['send_timeout_ms']);
        $pub = (bool) $o['bind_pub'];
        $action = $pub ? 'bind' : 'connect';
        try {
            // A context of its own (not persistent), so that close() can wait for this
            // socket's queue, and only for that.
            $this->context = new \ZMQContext(1, false);
            $this->socket = $this->context->getSocket($pub ? \ZMQ::SOCKET_PUB : \ZMQ::SOCKET_PUSH);
            $this->socket->setSockOpt(\ZMQ::SOCKOPT_SNDHWM, $this->sendHwm);
            $this->socket->setSockOpt(\ZMQ::SOCKOPT_LINGER, $this->lingerMs);
            if ($pub) {
                $this->socket->bind($endpoint);
                $bound = (string) $this->socket->getSockOpt(\ZMQ::SOCKOPT_LAST_ENDPOINT);
                $this->endpoint = $bound !== '' ? $bound : $endpoint;
            } else {
                $this->socket->setSockOpt(\ZMQ::SOCKOPT_SNDTIMEO, $this->sendTimeoutMs);
                $this->socket->setSockOpt(\ZMQ::SOCKOPT_IMMEDIATE, 0);
                $this->socket->setSockOpt(\ZMQ::SOCKOPT_RECONNECT_IVL, 100);
                $this->socket->setSockOpt(\ZMQ::SOCKOPT_RECONNECT_IVL_MAX, 1000);
                $this->socket->connect($endpoint);
                $this->endpoint = $endpoint;
            }
        } catch (\ZMQException $e) {
            $this->socket = null;
            $this->context = null;
            throw new PublishError($action, sprintf(
                'cannot %s %s: %s (expected e.g. tcp://127.0.0.1:5555 or ipc:///run/push-bridge.sock)',
                $action,
                self::quoted($endpoint),
                $e->getMessage(),
            ), null, $e);
        }
    }

    /**
     * Publishes $data (anything json_encode accepts) on $topic and returns the event
     * id: $id if given (retry a failed publish with the same id: the bridge drops
     * duplicates), else a fresh UUIDv7. An empty PHP array is sent as [], so use
     * (object) [] or new \stdClass() for {}.
     */
    public function publish(string $topic, mixed $data, ?string $id = null): string
    {
        $id ??= self::newEventId();
        $this->send(self::encode($topic, $data, $id, $this->maxMessageBytes));
        return $id;
    }

    /** As publish(), for data that is already JSON text: checked, then sent as-is. */
    public function publishJson(string $topic, string $json, ?string $id = null): string
    {
        $id ??= self::newEventId();
        $this->send(self::encodeJson($topic, $json, $id, $this->maxMessageBytes));
        return $id;
    }

    /**
     * Closes the socket, giving queued events up to $lingerMs (default: the
     * constructor's linger_ms, 2000) to leave; returns as soon as they have. Returns
     * false when the whole linger ran out, as queued events may then have been lost.
     * Closing twice does nothing (and returns true).
     */
    public function close(?int $lingerMs = null): bool
    {
        if ($this->socket === null) {
            return true;
        }
        $lingerMs = max(0, $lingerMs ?? $this->lingerMs);
        $this->socket->setSockOpt(\ZMQ::SOCKOPT_LINGER, $lingerMs);
        $started = hrtime(true);
        // Dropping the last references closes the socket, then terminates the context,
        // which waits (up to the linger) for the queue to drain.
        $this->socket = null;
        $this->context = null;
        $elapsedMs = (hrtime(true) - $started) / 1e6;
        return $lingerMs === 0 || $elapsedMs + 5 < $lingerMs;
    }

    /**
     * The three frames of an event whose data is any json_encode-able value, after
     * checking topic, id, data and size.
     *
     * @return array{string, string, string}
     * @throws PublishError
     */
    public static function encode(
        string $topic,
        mixed $data,
        string $id,
        int $maxMessageBytes = self::DEFAULT_MAX_MESSAGE_BYTES,
    ): array {
        self::checkTopic($topic);
        self::checkId($id);
        try {
            $json = json_encode($data, self::JSON_FLAGS);
        } catch (\JsonException $e) {
            throw new PublishError(
                'invalid_data',
                'could not serialize the event data to JSON: ' . $e->getMessage(),
                null,
                $e,
            );
        }
        self::checkSize($topic, $id, $json, $maxMessageBytes);
        return [$topic, $id, $json];
    }

    /**
     * The three frames of an event whose data is already JSON text, sent byte for
     * byte once it has been checked to be one JSON value the bridge can parse.
     *
     * @return array{string, string, string}
     * @throws PublishError
     */
    public static function encodeJson(
        string $topic,
        string $json,
        string $id,
        int $maxMessageBytes = self::DEFAULT_MAX_MESSAGE_BYTES,
    ): array {
        self::checkTopic($topic);
        self::checkId($id);
        self::checkSize($topic, $id, $json, $maxMessageBytes);
        try {
            // PHP's parser refuses what serde_json refuses (lone surrogates, control
            // characters, NaN, a depth above 127), except numbers beyond a double.
            $value = json_decode($json, false, self::MAX_JSON_DEPTH + 1, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new PublishError('invalid_data', 'the event data is not valid JSON: ' . $e->getMessage(), null, $e);
        }
        if (!self::allFinite($value)) {
            throw new PublishError('invalid_data', 'the event data is not valid JSON: a number is out of range');
        }
        return [$topic, $id, $json];
    }

    /**
     * Throws PublishError (kind invalid_topic) unless $topic is a valid topic: 1-256
     * bytes of UTF-8, no whitespace, no control characters, no `*`, `:`-separated
     * non-empty segments.
     */
    public static function checkTopic(string $topic): void
    {
        $reason = null;
        if (!self::isUtf8($topic)) {
            $reason = 'not_utf8';
        } elseif ($topic === '') {
            $reason = 'empty';
        } elseif (strlen($topic) > self::MAX_TOPIC_BYTES) {
            $reason = 'too_long';
        } elseif (preg_match(self::BAD_TOPIC_CHARACTER, $topic) === 1) {
            $reason = 'bad_character';
        } else {
            foreach (explode(':', $topic) as $segment) {
                if ($segment === '') {
                    $reason = 'empty_segment';
                    break;
                }
                if (str_contains($segment, '*')) {
                    $reason = 'wildcard';
                    break;
                }
            }
        }
        if ($reason !== null) {
            $shown = $reason === 'not_utf8' ? '0x' . bin2hex($topic) : self::quoted($topic);
            throw new PublishError(
                'invalid_topic',
                sprintf('invalid topic %s: it %s', $shown, self::TOPIC_REASONS[$reason]),
                $reason,
            );
        }
    }

    /** Throws PublishError (kind invalid_id) unless $id is 1-128 bytes of printable ASCII. */
    public static function checkId(string $id): void
    {
        if (preg_match('/\A[\x20-\x7e]{1,128}\z/', $id) !== 1) {
            $shown = self::isUtf8($id) ? self::quoted($id) : '0x' . bin2hex($id);
            throw new PublishError(
                'invalid_id',
                sprintf('invalid event id %s: ids must be 1-%d bytes of printable ASCII', $shown, self::MAX_ID_BYTES),
            );
        }
    }

    /**
     * A fresh event id: a lowercase UUIDv7 (RFC 9562). 48 bits of Unix milliseconds,
     * then a 42-bit counter (12 bits of rand_a, the top 30 of rand_b) that starts at a
     * random value each millisecond and counts up within it, then 32 random bits: ids
     * made by one process sort, as strings, in the order they were made, even within
     * a millisecond or if the clock steps back.
     */
    public static function newEventId(): string
    {
        $now = (int) floor(microtime(true) * 1000);
        if ($now > self::$idMs) {
            self::$idMs = $now;
            self::$idCounter = random_int(0, (1 << 41) - 1);
        } else {
            self::$idCounter++;
            if (self::$idCounter >= 1 << 42) {
                self::$idMs++;
                self::$idCounter = random_int(0, (1 << 41) - 1);
            }
        }
        $ms = self::$idMs & 0xFFFFFFFFFFFF;
        $counter = self::$idCounter;
        $hex = sprintf(
            '%012x7%03x%08x%08x',
            $ms,
            $counter >> 30,
            0x80000000 | ($counter & 0x3FFFFFFF),
            random_int(0, 0xFFFFFFFF),
        );
        return sprintf(
            '%s-%s-%s-%s-%s',
            substr($hex, 0, 8),
            substr($hex, 8, 4),
            substr($hex, 12, 4),
            substr($hex, 16, 4),
            substr($hex, 20, 12),
        );
    }

    public function __destruct()
    {
        // Bounded by the linger set at construction (2 s by default): never hangs.
        $this->socket = null;
        $this->context = null;
    }

    /** @param array{string, string, string} $frames */
    private function send(array $frames): void
    {
        if ($this->socket === null) {
            throw new PublishError('closed', 'the publisher is closed');
        }
        try {
            // sendmulti returns false when the queue stayed full for the send timeout.
            $sent = $this->socket->sendmulti($frames);
        } catch (\ZMQSocketException $e) {
            throw new PublishError('send', 'could not send the message: ' . $e->getMessage(), null, $e);
        }
        if ($sent === false) {
            throw new PublishError('queue_full', sprintf(
                'the send queue to %s is full (%d messages) and did not drain within %d ms: '
                . 'the bridge is down or too slow; the event was not sent',
                $this->endpoint,
                $this->sendHwm,
                $this->sendTimeoutMs,
            ));
        }
    }

    private static function checkSize(string $topic, string $id, string $json, int $limit): void
    {
        $size = strlen($topic) + strlen($id) + strlen($json);
        if ($size > $limit) {
            throw new PublishError('too_large', sprintf(
                "the message is %d bytes, above the %d-byte limit (the bridge's "
                . 'ingress.max_message_bytes); nothing was sent',
                $size,
                $limit,
            ));
        }
    }

    /** Whether every number in a decoded value is finite (1e999 decodes to INF). */
    private static function allFinite(mixed $value): bool
    {
        if (is_float($value)) {
            return is_finite($value);
        }
        if (is_array($value) || $value instanceof \stdClass) {
            foreach ((array) $value as $item) {
                if (!self::allFinite($item)) {
                    return false;
                }
            }
        }
        return true;
    }

    private static function isUtf8(string $text): bool
    {
        // PCRE in UTF-8 mode refuses invalid UTF-8 (and needs no mbstring extension).
        return preg_match('//u', $text) === 1;
    }

    private static function quoted(string $text): string
    {
        return json_encode($text, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE)
            ?: '""';
    }
}
