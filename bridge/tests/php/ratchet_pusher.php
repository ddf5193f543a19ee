<?php
// The producer of Ratchet's "push integration" tutorial (socketo.me/docs/push): a blog
// entry whose "category" is the topic, pushed as one JSON frame over a PUSH socket
// with the persistent id 'my pusher'.
//
//   php ratchet_pusher.php ENDPOINT CATEGORY
//
// Prints the frame it sent on stdout.

if (!extension_loaded('zmq')) {
    fwrite(STDERR, "the zmq extension is not loaded (apt-get install php-zmq)\n");
    exit(2);
}
if ($argc !== 3) {
    fwrite(STDERR, "usage: php ratchet_pusher.php ENDPOINT CATEGORY\n");
    exit(2);
}

$entryData = [
    'category' => $argv[2],
    'title' => 'Kätzchen entdecken Laserpointer / Kittens discover laser pointers',
    'article' => 'A short article: 🐱 chases a red dot across the room.',
    'when' => time(),
];

$context = new ZMQContext();
$socket = $context->getSocket(ZMQ::SOCKET_PUSH, 'my pusher');
$socket->connect($argv[1]);

$frame = json_encode($entryData);
$socket->send($frame);
echo $frame, "\n";
