// Type declarations of push-bridge-client (src/index.js).

/** The native protocol's subprotocol name, `push-bridge.v1`. */
export declare const PROTOCOL: "push-bridge.v1";
export declare const VERSION: string;

export interface Backoff {
  /** The first delay, in ms (default 500). */
  initial?: number;
  /** The longest delay, in ms (default 30 000). */
  max?: number;
  /** Each attempt multiplies the delay by this (default 2). */
  factor?: number;
  /** Up to this share of the delay is taken off at random (default 0.5). */
  jitter?: number;
}

export declare const DEFAULTS: {
  readonly backoff: Readonly<Required<Backoff>>;
  readonly connectTimeout: number;
  readonly maxFrameBytes: number;
};

export interface Options {
  /** A fixed token. */
  token?: string;
  /** Gives a token (or a promise of one): called before every connection, and again when the token expired (close 4001). */
  getToken?: () => string | Promise<string>;
  /** Neither: connect without a token, to a bridge with `auth.allow_anonymous = true`. */
  anonymous?: boolean;
  backoff?: Backoff;
  /** A connection not welcomed by the bridge within this many ms is retried (default 10 000). */
  connectTimeout?: number;
  /** The bridge's `server.max_inbound_frame_bytes` when it was raised (default 4096). */
  maxFrameBytes?: number;
  /** A WebSocket class, where there is no global one. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
}

/** One event, as published. */
export interface PushEvent<Data = unknown> {
  topic: string;
  id: string;
  data: Data;
}

export type State = "connecting" | "open" | "reconnecting" | "closed";

export interface StateDetails {
  /** The close code that ended the last connection. */
  code?: number;
  reason?: string;
  /** While reconnecting: attempts since the last welcome, and the wait before the next one in ms. */
  attempt?: number;
  delay?: number;
  /** When open: the bridge's session id and heartbeat (s). */
  session?: string;
  heartbeat?: number;
  /** When closed because of an error. */
  error?: PushBridgeError;
}

export interface Reset {
  /** The patterns whose missed events cannot be replayed: refetch what they show. */
  patterns: string[];
  /** `not_recovered`: the bridge no longer has the last event seen; `no_position`: no event had been seen yet. */
  reason: "not_recovered" | "no_position";
}

export interface Resumed {
  patterns: string[];
  /** true: every missed event was replayed; false: could not be (see `reset`); null: nothing to resume from. */
  recovered: boolean | null;
}

export type ErrorCode =
  | "token_expired"
  | "token_revoked"
  | "too_slow"
  | "policy"
  | "protocol_error"
  | "connect_failed"
  | "token_unavailable"
  | "bad_frame"
  | "bad_request"
  | "forbidden"
  | "too_many_subscriptions"
  | "unsupported"
  | "unsubscribed"
  | (string & {});

export declare class PushBridgeError extends Error {
  constructor(code: string, message: string, details?: { fatal?: boolean; closeCode?: number; patterns?: string[] });
  readonly code: ErrorCode;
  /** True when the client stopped because of it. */
  readonly fatal: boolean;
  readonly closeCode?: number;
  /** For a refused subscribe: the patterns it asked for. */
  readonly patterns?: string[];
}

/** Unsubscribes from every pattern of the subscription, or from the ones given. */
export interface Unsubscribe {
  (patterns?: string | string[]): void;
  /** Fulfilled once the bridge confirmed every pattern; rejected with a PushBridgeError when it refused them. */
  readonly ready: Promise<{ patterns: string[] }>;
}

export interface Events {
  state: (state: State, details: StateDetails) => void;
  error: (error: PushBridgeError) => void;
  reset: (reset: Reset) => void;
  resumed: (resumed: Resumed) => void;
}

export declare class Client {
  constructor(url: string | URL, options: Options);
  readonly state: State;
  readonly session: string | null;
  readonly lastEventId: string | null;
  subscribe<Data = unknown>(patterns: string | string[], onEvent: (event: PushEvent<Data>) => void): Unsubscribe;
  on<Name extends keyof Events>(name: Name, listener: Events[Name]): () => void;
  reconnect(): void;
  close(): void;
}

export declare function connect(url: string | URL, options: Options): Client;
export declare function backoffDelay(attempt: number, backoff?: Backoff, random?: () => number): number;
export declare function closeAction(
  code: number,
  reason?: string,
  canRefresh?: boolean,
): { action: "reconnect" | "resume" | "refresh" | "stop"; error?: PushBridgeError };
export declare function matches(pattern: string, topic: string): boolean;
export declare function chunkRequests<T>(topics: string[], make: (topics: string[]) => T, maxBytes: number): T[];
