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
  close(): Promise<void>;
}

/** Key prefixes, in one place so docs/storage.md and the code cannot drift apart. */
export const keys = {
  client: (clientId: string) => `client:${clientId}`,
  authorizationRequest: (id: string) => `authreq:${id}`,
  upstreamState: (state: string) => `upstate:${state}`,
  code: (codeHash: string) => `code:${codeHash}`,
  usedCode: (codeHash: string) => `usedcode:${codeHash}`,
  refreshToken: (tokenHash: string) => `refresh:${tokenHash}`,
  revokedGrant: (grantId: string) => `revoked:${grantId}`,
  upstreamRejected: (grantId: string) => `upstream-rejected:${grantId}`,
  session: (sid: string) => `sess:${sid}`,
  masterSecret: () => `meta:secret`,
  upstreamRegistration: (issuer: string) => `upstream-reg:${issuer}`,
} as const;
