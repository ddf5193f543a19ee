<?php
// Superdesk Publisher 1.4/1.5's producer side, unchanged: what its
// PushNotificationOnPackageListener pushes through GosWebSocketBundle's ZmqPusher
// (gos_web_socket.pushers.zmq: persistent: true, linger: -1, protocol: tcp, port 5555).
//
//   php superdesk_pusher.php ENDPOINT
//
// Sends two single-frame messages on one PUSH socket: a package "create", then the same
// package "update" (Superdesk uses the topic package_created for both). Each frame is
// printed on its own line on stdout, exactly as sent, so the test can compare what its
// clients received with what PHP produced.

if (!extension_loaded('zmq')) {
    fwrite(STDERR, "the zmq extension is not loaded (apt-get install php-zmq)\n");
    exit(2);
}
if ($argc !== 2) {
    fwrite(STDERR, "usage: php superdesk_pusher.php ENDPOINT\n");
    exit(2);
}
$endpoint = $argv[1];

// The connection GosWebSocketBundle's ZmqConnectionFactory builds: a persistent
// context with one I/O thread, a PUSH socket, LINGER from the config (-1: on exit, wait
// until everything queued has been delivered), connected (the server side binds).
$context = new ZMQContext(1, true);
$socket = $context->getSocket(ZMQ::SOCKET_PUSH);
$socket->setSockOpt(ZMQ::SOCKOPT_LINGER, -1);
$socket->connect($endpoint);

// A package as Publisher serializes it (JMS, then json_decode(..., true)): nested
// objects and lists, HTML bodies, URLs (json_encode escapes "/" as "\/"), non-ASCII
// text (sent as \uXXXX, emoji as surrogate pairs), and an empty JSON object that the
// PHP round trip turned into [] (so "extra" arrives as a list).
function package(string $headline, string $updatedAt, int $version): array
{
    return [
        'id' => 2187,
        'guid' => 'urn:newsml:sd-master.test.superdesk.org:2026-11-20T10:15:02.512074:8a1c1f2e-5b1e-4f0b-9d5c-2a6f4e8b9c01',
        'headline' => $headline,
        'slugline' => 'zürich-storm',
        'description' => 'Gale-force winds hit Zürich; <b>trains</b> stopped — “unprecedented”, says MétéoSuisse 🌩',
        'language' => 'de',
        'type' => 'text',
        'urgency' => 3,
        'priority' => 6,
        'version' => $version,
        'located' => 'Zürich',
        'byline' => 'Zoë Ångström / Reuters',
        'body' => '<p>Winds of 140 km/h</p><p><a href="https://example.com/live/storm?x=1&y=2">Live</a></p>',
        'pub_status' => 'usable',
        'status' => 'published',
        'genre' => [['code' => 'Article', 'name' => 'Article (news)']],
        'services' => [['code' => 'news', 'name' => 'News']],
        'subjects' => [['code' => '17004000', 'scheme' => null, 'name' => 'Wetter']],
        'keywords' => ['Sturm', 'Zürich', 'SBB'],
        'authors' => [[
            'id' => 12,
            'name' => 'Zoë Ångström',
            'role' => 'writer',
            'biography' => 'Reporter — Wetter & Verkehr',
            'avatar_url' => 'https://publisher.example.com/author/media/zoe.jpg',
            'jobtitle' => ['qcode' => '1', 'name' => 'Reporter'],
        ]],
        'items' => [[
            'id' => 3301,
            'guid' => 'tag:localhost:2026:7d2c9a51',
            'type' => 'picture',
            'headline' => 'Gestürzter Baum am Bellevue',
            'renditions' => [
                'original' => [
                    'href' => 'https://cdn.example.com/media/2026/11/20/baum.jpg',
                    'width' => 4000,
                    'height' => 2667,
                    'mimetype' => 'image/jpeg',
                ],
                'thumbnail' => [
                    'href' => 'https://cdn.example.com/media/2026/11/20/baum-thumb.jpg',
                    'width' => 180,
                    'height' => 120,
                    'mimetype' => 'image/jpeg',
                ],
            ],
        ]],
        'articles' => [[
            'id' => 901,
            'title' => $headline,
            'slug' => 'zurich-storm',
            'status' => 'published',
            'is_published_fbia' => false,
            'route' => ['id' => 4, 'name' => 'Schweiz', 'staticprefix' => '/schweiz'],
            'tenant' => ['code' => 'a1b2c3', 'subdomain' => null, 'domain_name' => 'news.example.com'],
        ]],
        'extra' => [],
        'created_at' => '2026-11-20T10:15:02+00:00',
        'updated_at' => $updatedAt,
    ];
}

$pushes = [
    ['package' => package('Sturm legt Zürich lahm', '2026-11-20T10:15:02+00:00', 1), 'state' => 'create'],
    ['package' => package('Sturm legt Zürich lahm — SBB: „Züge fahren wieder“', '2026-11-20T11:02:40+00:00', 2), 'state' => 'update'],
];
foreach ($pushes as $data) {
    // Gos\...\Pusher\Message (topic, data) through Symfony's JsonEncoder: plain
    // json_encode, i.e. "\/" and "\uXXXX" escapes.
    $frame = json_encode(['topic' => 'package_created', 'data' => $data]);
    if ($frame === false) {
        fwrite(STDERR, 'json_encode failed: ' . json_last_error_msg() . "\n");
        exit(1);
    }
    $socket->send($frame);
    echo $frame, "\n";
}
