import session from "express-session";
import { sha256 } from "../crypto.js";
import { storeKey, type Store } from "./store.js";

/**
 * express-session on top of the gateway's one Store, so browser sessions live wherever the rest
 * does. Stored under the session id's hash: the store never holds a usable session id.
 */
export class StoreSessions extends session.Store {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {
    super();
  }

  override get(sid: string, done: (error: unknown, session?: session.SessionData | null) => void): void {
    this.store.get<session.SessionData>(storeKey.session(sha256(sid))).then((s) => done(null, s ?? null), done);
  }

  override set(sid: string, data: session.SessionData, done?: (error?: unknown) => void): void {
    this.store.put(storeKey.session(sha256(sid)), data, this.#ttl(data)).then(
      () => done?.(),
      (e: unknown) => done?.(e),
    );
  }

  override destroy(sid: string, done?: (error?: unknown) => void): void {
    this.store.delete(storeKey.session(sha256(sid))).then(
      () => done?.(),
      (e: unknown) => done?.(e),
    );
  }

  override touch(sid: string, data: session.SessionData, done?: () => void): void {
    this.set(sid, data, () => done?.());
  }

  #ttl(data: session.SessionData): number {
    const maxAge = data.cookie?.maxAge;
    return typeof maxAge === "number" && maxAge > 0 ? Math.ceil(maxAge / 1000) : this.ttlSeconds;
  }
}
