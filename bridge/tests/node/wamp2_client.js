// A real WAMP v2 subscriber (npm `autobahn`), driven by bridge/tests/wamp2.rs.
//
//   node wamp2_client.js <url> <realm> '<options JSON>'
//
// Options: {"authmethods": ["ticket"], "authid": "…", "ticket": "…"}; with "ticket",
// a CHALLENGE is answered by `onchallenge` returning it.
//
// Once the session is open the test sends commands on stdin, one JSON object a line:
//   {"op":"subscribe","topic":"article","match":"prefix","as":"articles"}
//   {"op":"unsubscribe","as":"articles"}
//   {"op":"publish","topic":"t","acknowledge":true}
//   {"op":"call","procedure":"p"}
//   {"op":"register","procedure":"p"}
//   {"op":"leave"}
// Every observation is one JSON line on stdout ("event" says which):
//   challenge, open, subscribed, unsubscribed, EVENT, ok (a request that succeeded),
//   error (a request refused: the WAMP error URI), closed (then the process exits).
'use strict';

const readline = require('node:readline');
const autobahn = require('autobahn');

const [url, realm, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson || '{}');

function print(observation) {
    process.stdout.write(JSON.stringify(observation) + '\n');
}

const connection = new autobahn.Connection({
    url,
    realm,
    authmethods: options.authmethods,
    authid: options.authid,
    onchallenge: (session, method, extra) => {
        print({ event: 'challenge', method, extra });
        return options.ticket;
    },
    // One attempt: the test decides what happens next.
    max_retries: 0,
    retry_if_unreachable: false,
});

// The subscriptions this session holds, by the label the test gave them.
const subscriptions = new Map();

// Runs one command; its outcome is printed, never thrown.
async function run(session, command) {
    const { op } = command;
    try {
        switch (op) {
            case 'subscribe': {
                const label = command.as || command.topic;
                const onEvent = (args, kwargs, details) =>
                    print({
                        event: 'EVENT',
                        as: label,
                        topic: details.topic,
                        publication: details.publication,
                        args,
                        kwargs,
                    });
                const matchOptions = command.match ? { match: command.match } : undefined;
                const subscription = await session.subscribe(command.topic, onEvent, matchOptions);
                subscriptions.set(label, subscription);
                print({ event: 'subscribed', as: label, id: subscription.id });
                break;
            }
            case 'unsubscribe': {
                await session.unsubscribe(subscriptions.get(command.as));
                subscriptions.delete(command.as);
                print({ event: 'unsubscribed', as: command.as });
                break;
            }
            case 'publish': {
                await session.publish(command.topic, [{ from: 'a subscriber' }], {}, {
                    acknowledge: command.acknowledge === true,
                });
                print({ event: 'ok', op });
                break;
            }
            case 'call':
                await session.call(command.procedure, []);
                print({ event: 'ok', op });
                break;
            case 'register':
                await session.register(command.procedure, () => 'never called');
                print({ event: 'ok', op });
                break;
            case 'leave':
                connection.close();
                break;
            default:
                print({ event: 'error', op, error: 'unknown command' });
        }
    } catch (err) {
        // autobahn rejects refused requests with an autobahn.Error carrying the URI.
        print({ event: 'error', op, error: err && err.error ? err.error : String(err) });
    }
}

connection.onopen = (session, details) => {
    print({
        event: 'open',
        session: session.id,
        authmethod: details.authmethod,
        authid: details.authid,
        roles: details.roles,
    });
    // Commands run one after the other, in the order the test wrote them.
    let queue = Promise.resolve();
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
        if (line.trim() !== '') {
            queue = queue.then(() => run(session, JSON.parse(line)));
        }
    });
};

connection.onclose = (reason, details) => {
    print({ event: 'closed', reason, details: { reason: details.reason, message: details.message } });
    // Let stdout drain, then stop (stdin would keep the process alive).
    process.stdout.write('', () => process.exit(0));
    return true;
};

connection.open();
