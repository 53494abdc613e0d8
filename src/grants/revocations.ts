import type { Clock } from "../clock.js";
import type { Logger } from "../log.js";
import { storeKey, type Store, type Watcher } from "../store/store.js";

/**
 * How old the view's last word from the store may be for it to answer alone (ms). The bound on a
 * revocation reaching every process: one acknowledged at t is refused everywhere from t + this on,
 * whatever happens to the feed (docs/security.md RU5).
 */
export const REVOCATION_BOUND_MS = 1000;

const PREFIX = storeKey.revokedGrant("");
const SWEEP_MS = 60_000;

/**
 * The grants revoked, held in this process and kept current by the store's `watch` (Redis pub/sub,
 * SQLite's change table, memory: directly), so /mcp checks revocation without a store round trip.
 * It answers only while its last confirmation is at most REVOCATION_BOUND_MS old; otherwise the
 * caller reads the store (fail closed), and the log says so once.
 */
export class RevocationView implements Watcher {
  /** Grant id → when its marker expires (the clock's ms). */
  readonly #revoked = new Map<string, number>();
  readonly #clock: Clock;
  readonly #log: Pick<Logger, "info" | "warn">;
  /** performance.now() before which every revocation is known; -∞: nothing vouched for. */
  #confirmedAt = Number.NEGATIVE_INFINITY;
  #reason = "its first load has not finished";
  #warned = false;
  #sweptAt: number;
  #stop: (() => Promise<void>) | undefined;
  #onRevoked: (grantId: string) => void = () => {};

  constructor(deps: { clock: Clock; log: Pick<Logger, "info" | "warn"> }) {
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#sweptAt = deps.clock.now();
  }

  /** Load the revoked grants from the store and follow it. */
  static async start(store: Store, deps: { clock: Clock; log: Pick<Logger, "info" | "warn"> }): Promise<RevocationView> {
    const view = new RevocationView(deps);
    view.#stop = await store.watch(PREFIX, view);
    return view;
  }

  /** True or false while the view is current; undefined when it cannot vouch: read the store. */
  revoked(grantId: string): boolean | undefined {
    const expiresAt = this.#revoked.get(grantId);
    if (expiresAt !== undefined && expiresAt > this.#clock.now()) return true; // a revocation is never undone
    if (performance.now() - this.#confirmedAt <= REVOCATION_BOUND_MS) return false;
    if (!this.#warned) this.#warn(`no word from the store for over ${REVOCATION_BOUND_MS} ms (${this.#reason})`);
    return undefined;
  }

  /** The one listener told of each grant the first time the view learns it is revoked (to end what it has open). */
  onRevoked(listener: (grantId: string) => void): void {
    this.#onRevoked = listener;
  }

  /** Grants held (live or expired since the last sweep). */
  get size(): number {
    return this.#revoked.size;
  }

  record(key: string, ttlMs: number): void {
    if (!key.startsWith(PREFIX)) return;
    const grantId = key.slice(PREFIX.length);
    const expiresAt = this.#clock.now() + ttlMs;
    const known = this.#revoked.get(grantId);
    if (expiresAt <= (known ?? 0)) return;
    this.#revoked.set(grantId, expiresAt);
    if (known === undefined) this.#tell(grantId);
  }

  current(at: number): void {
    if (at <= this.#confirmedAt) return;
    this.#confirmedAt = at;
    this.#reason = "the store stopped confirming";
    if (this.#warned) this.#log.info("revocations: the local view is current again; /mcp checks it without a store read");
    this.#warned = false;
    this.#sweep();
  }

  lost(reason: string): void {
    this.#confirmedAt = Number.NEGATIVE_INFINITY;
    this.#reason = reason;
    if (!this.#warned) this.#warn(reason);
  }

  async close(): Promise<void> {
    await this.#stop?.();
    this.#stop = undefined;
  }

  /** The listener runs inside the store's feed: whatever it throws must not stop the feed or fail a `/revoke`. */
  #tell(grantId: string): void {
    try {
      this.#onRevoked(grantId);
    } catch (error) {
      this.#log.warn(`revocations: ending what a revoked grant has open failed: ${(error as Error).message}`);
    }
  }

  #warn(reason: string): void {
    this.#warned = true;
    this.#log.warn(`revocations: the local view cannot vouch for them (${reason}): every /mcp request reads the store until it can`);
  }

  #sweep(): void {
    const now = this.#clock.now();
    if (now - this.#sweptAt < SWEEP_MS) return;
    this.#sweptAt = now;
    for (const [grantId, expiresAt] of this.#revoked) if (expiresAt <= now) this.#revoked.delete(grantId);
  }
}
