// A real EventSource (npm `eventsource`, the WHATWG API on Node's fetch) reading the
// bridge's /events, driven by bridge/tests/sse.rs.
//
//   node sse_client.js <url> '<options JSON>'
//
// Options (all optional):
//   "exit_after": N      close and exit after N events (messages and resets)
//   "last_event_id": id  send `Last-Event-ID: id` on the first request, as a client
//                        that resumes after a restart does
//   "headers": {…}       extra request headers (e.g. Authorization)
//   "cut_after": N       after N events, break the connection under the EventSource
//                        (once), so that it reconnects by itself with Last-Event-ID
// Every observation is one JSON line on stdout ("event" says which):
//   request (the headers that matter, each time the EventSource connects), open,
//   message ({id, data}), reset, cut, error ({message, code}; the script exits when the
//   EventSource gives up).
'use strict';

const { EventSource } = require('eventsource');

const [url, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson || '{}');

function print(observation) {
    process.stdout.write(JSON.stringify(observation) + '\n');
}

let requests = 0;
let cut = null;

// The fetch the EventSource uses: adds the configured headers, reports each request,
// and (for `cut_after`) hands the body over through a stream the script can break.
async function fetchWithTestHooks(input, init) {
    requests += 1;
    const headers = { ...init.headers, ...options.headers };
    if (requests === 1 && options.last_event_id !== undefined) {
        headers['Last-Event-ID'] = options.last_event_id;
    }
    print({ event: 'request', last_event_id: headers['Last-Event-ID'] ?? null });
    const own = new AbortController();
    const signal = AbortSignal.any([init.signal, own.signal]);
    const response = await fetch(input, { ...init, headers, signal });
    if (options.cut_after === undefined || !response.body) {
        return response;
    }
    const reader = response.body.getReader();
    let broken = false;
    const body = new ReadableStream({
        async pull(controller) {
            try {
                const { done, value } = await reader.read();
                if (done) {
                    controller.close();
                } else {
                    controller.enqueue(value);
                }
            } catch (err) {
                // Not an AbortError: the EventSource must take it as a lost connection.
                controller.error(new Error(broken ? 'connection cut by the test' : String(err)));
            }
        },
    });
    cut = () => {
        broken = true;
        own.abort();
    };
    return new Response(body, { status: response.status, headers: response.headers });
}

const source = new EventSource(url, { fetch: fetchWithTestHooks });
let seen = 0;

function counted() {
    seen += 1;
    if (cut && seen === options.cut_after) {
        print({ event: 'cut', after: seen });
        cut();
        cut = null;
        options.cut_after = undefined;
    }
    if (seen === options.exit_after) {
        source.close();
        process.stdout.write('', () => process.exit(0));
    }
}

source.onopen = () => print({ event: 'open' });
source.onmessage = (message) => {
    print({ event: 'message', id: message.lastEventId, data: JSON.parse(message.data) });
    counted();
};
source.addEventListener('reset', (message) => {
    print({ event: 'reset', id: message.lastEventId, data: JSON.parse(message.data) });
    counted();
});
source.onerror = (err) => {
    print({ event: 'error', message: err.message, code: err.code ?? null });
    // CLOSED: the EventSource gave up (a refusal such as 401/403) and will not retry.
    if (source.readyState === EventSource.CLOSED) {
        process.stdout.write('', () => process.exit(0));
    }
};
