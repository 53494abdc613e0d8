/**
 * The one storage contract (DESIGN §4). Every write carries a TTL; single-use records are `take`n
 * atomically. Values are JSON-serialisable. Keys carry a typed prefix (see docs/storage.md).
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  put<T>(key: string, value: T, ttlSeconds: number): Promise<void>;
  /** Write only if absent (or expired); true when this call wrote. Locks and first-writer-wins. */
  add<T>(key: string, value: T, ttlSeconds: number): Promise<boolean>;
  /** Read and delete in one atomic step: of two racing callers, one gets the value, one undefined. */
  take<T>(key: string): Promise<T | undefined>;
  delete(key: string): Promise<void>;
  /**
   * Count one event in a fixed window (rate limits): the first hit creates the counter with this TTL,
   * later hits inside the window add one without extending it. Returns the count including this hit.
   */
  increment(key: string, windowSeconds: number): Promise<number>;
  /**
   * Every live record whose key starts with `prefix`, in no set order, read a page at a time (writes
   * may happen between pages). For rare operator and lifecycle work (ending a user's or a client's
   * grants), never on a request's hot path: it reads the whole prefix.
   */
  scan<T>(prefix: string): AsyncIterable<[key: string, value: T]>;
  /**
   * `put`, and tell every `watch` of a prefix of `key`: this process's before the promise resolves,
   * every other process's on the same state within the backend's bound (docs/storage.md). Records
   * published are never deleted, only expire: a watcher learns of additions only.
   */
  publish<T>(key: string, value: T, ttlSeconds: number): Promise<void>;
  /**
   * Follow the records `publish`ed under `prefix` (a small set every process needs at hand: revoked
   * grants): every live one, then each one published later. Resolves once the first load was tried
   * (whether or not it worked); the returned function stops the watch.
   */
  watch(prefix: string, watcher: Watcher): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** What `Store.watch` tells, as it learns it. Times are `performance.now()` of this process. */
export interface Watcher {
  /** A record under the prefix, live for `ttlMs` more. Told again of one already known: idempotent. */
  record(key: string, ttlMs: number): void;
  /** Every record published before `at` has been passed to `record`. */
  current(at: number): void;
  /** The feed can no longer vouch for anything since its last `current` (`reason`: for the log, no secrets); it reloads when it can. */
  lost(reason: string): void;
}

/**
 * The backend cannot be reached or cannot write right now (Redis down, SQLite locked or disk full).
 * Answered as 503 with Retry-After: the request may succeed later, and nothing stored was touched.
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  readonly retryAfterSeconds = 5;
}

/** TTLs are positive seconds (fractions allowed) in every backend; a write without one is a bug. */
export function ttlMs(key: string, ttlSeconds: number): number {
  if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) throw new RangeError(`store write of ${key.split(":")[0]} without a positive TTL`);
  return Math.ceil(ttlSeconds * 1000);
}

/** Key prefixes, in one place so docs/storage.md and the code cannot drift apart. */
export const storeKey = {
  client: (clientId: string) => `client:${clientId}`,
  authorizationRequest: (id: string) => `authreq:${id}`,
  upstreamState: (state: string) => `upstate:${state}`,
  code: (codeHash: string) => `code:${codeHash}`,
  usedCode: (codeHash: string) => `usedcode:${codeHash}`,
  refreshToken: (tokenHash: string) => `refresh:${tokenHash}`,
  /** RFC 8628: a device authorization request, by the hash of its device_code. */
  device: (codeHash: string) => `device:${codeHash}`,
  /** The device_code hash a user code (normalised) stands for, until it is entered once. */
  userCode: (userCode: string) => `usercode:${userCode}`,
  /** How the user answered a device authorization: written once. */
  deviceOutcome: (codeHash: string) => `device-outcome:${codeHash}`,
  /** RFC 8628 §3.5: held for one polling interval after an accepted poll. */
  devicePoll: (codeHash: string) => `device-poll:${codeHash}`,
  revokedGrant: (grantId: string) => `revoked:${grantId}`,
  /** One grant, by a hash of its client (so one client's prefix is never another's): found by client or user to end it. */
  grant: (clientHash: string, grantId: string) => `grant:${clientHash}:${grantId}`,
  /** The prefix of `grant` records: all of them, or one client's (by `grant(clientHash, "")`). */
  grants: "grant:",
  upstreamRejected: (grantId: string) => `upstream-rejected:${grantId}`,
  /** The scope a step-up challenge named for a grant: its next refresh sends the client to authorize again (src/as/refresh.ts). */
  stepUp: (grantId: string) => `step-up:${grantId}`,
  session: (sid: string) => `sess:${sid}`,
  /** Whose an upstream MCP session is (src/rs/sessions.ts), keyed by a hash of the resource and the session id. */
  mcpSession: (hash: string) => `mcp-session:${hash}`,
  rateLimit: (rule: string, subject: string) => `rate:${rule}:${subject}`,
  /** A refresh token already exchanged: its successor, and what a replay of it is answered from. */
  usedRefreshToken: (tokenHash: string) => `usedrefresh:${tokenHash}`,
  /** Single-flight lock on one grant's upstream refresh, shared by every instance. */
  refreshLock: (grantId: string) => `lock:refresh:${grantId}`,
  /** Approvals a gateway user chose to remember, keyed by a hash of the user name. */
  approvals: (userHash: string) => `approvals:${userHash}`,
  /** A fetched Client ID Metadata Document, cached per its Cache-Control. */
  clientMetadataDocument: (urlHash: string) => `cimd:${urlHash}`,
  /** A private_key_jwt client's key set fetched from its `jwks_uri`, cached per its Cache-Control. */
  clientJwks: (uriHash: string) => `jwks:${uriHash}`,
  /** A client assertion's `jti` already used (RFC 7523 §3), until the assertion expires. */
  usedClientAssertion: (hash: string) => `jti:${hash}`,
  masterSecret: () => `meta:secret`,
  upstreamRegistration: (issuer: string) => `upstream-reg:${issuer}`,
  /** The authorization server a pre-registered upstream client belongs to (the first it was used with). */
  preRegisteredIssuer: (clientAndCallback: string) => `upstream-client-issuer:${clientAndCallback}`,
} as const;
