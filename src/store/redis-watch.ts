import type { Redis } from "ioredis";
import type { Watcher } from "./store.js";

/** Where `publish` announces a record: `[key, ttlMs]` as JSON. Channels are not keys: named in full here. */
export const CHANNEL = "mcp-oauth-gateway:published";
/** How often the subscription proves it is alive: a PING answered on it follows every message published before it. */
export const HEARTBEAT_MS = 250;
const RETRY_MS = 1000;
const FIRST_SYNC_MS = 5000;

/** SET, then PUBLISH: one script, so no process can see the record without the announcement being on its way. */
export const PUBLISH_SCRIPT = `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;

interface Entry {
  prefix: string;
  watcher: Watcher;
  /** Its prefix read since the subscription last (re)started: pongs may vouch for it. */
  loaded: boolean;
}

/**
 * The watches of one RedisStore: one subscriber connection on CHANNEL. On every (re)connection it
 * subscribes, then reads each watched prefix (SCAN, PTTL), so nothing published while it was away is
 * missed. A PING every HEARTBEAT_MS on the subscriber connection, once answered, vouches for every
 * message published before it was sent; a connection that closes or stops answering is reported
 * `lost` at once and reconnected.
 */
export class RedisWatches {
  readonly #main: Redis;
  readonly #entries = new Set<Entry>();
  readonly #keyPrefix: string;
  #sub: Redis | undefined;
  #timer: NodeJS.Timeout | undefined;
  #generation = 0;
  #pinging = false;
  #firstSync: Promise<void> | undefined;
  #settleFirst = (): void => {};

  constructor(main: Redis, keyPrefix: string) {
    this.#main = main;
    this.#keyPrefix = keyPrefix;
  }

  /** A publish of this process: its watchers learn it before `publish` resolves. */
  local(key: string, ttlMs: number): void {
    for (const { prefix, watcher } of this.#entries) if (key.startsWith(prefix)) watcher.record(key, ttlMs);
  }

  async watch(prefix: string, watcher: Watcher): Promise<() => Promise<void>> {
    const entry: Entry = { prefix, watcher, loaded: false };
    this.#entries.add(entry);
    if (this.#sub === undefined) this.#start();
    else if (this.#sub.status === "ready") await this.#load(entry, this.#generation).catch((error: unknown) => this.#lose(reason(error)));
    await Promise.race([this.#firstSync, new Promise((r) => setTimeout(r, FIRST_SYNC_MS).unref())]);
    return async () => {
      this.#entries.delete(entry);
      if (this.#entries.size === 0) this.close();
    };
  }

  close(): void {
    clearInterval(this.#timer);
    for (const event of ["close", "ready", "message"]) this.#sub?.removeAllListeners(event);
    this.#sub?.disconnect();
    this.#sub = undefined;
    this.#generation++;
  }

  #start(): void {
    const sub = this.#main.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: false });
    this.#sub = sub;
    this.#firstSync = new Promise((resolve) => (this.#settleFirst = resolve));
    sub.on("error", () => {}); // reported as `lost` by the close that follows
    sub.on("message", (_channel: string, message: string) => this.#message(message));
    sub.on("close", () => this.#lose("the Redis subscription closed"));
    sub.on("ready", () => void this.#sync(sub));
    sub.connect().catch(() => this.#settleFirst());
    this.#timer = setInterval(() => this.#heartbeat(sub), HEARTBEAT_MS).unref();
  }

  async #sync(sub: Redis): Promise<void> {
    const generation = ++this.#generation;
    try {
      await sub.subscribe(CHANNEL);
      for (const entry of this.#entries) await this.#load(entry, generation);
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#lose(`the Redis subscription could not start (${reason(error)})`);
      const lost = this.#generation;
      const retry = () => lost === this.#generation && sub === this.#sub && sub.status === "ready" && void this.#sync(sub);
      setTimeout(retry, RETRY_MS).unref();
    } finally {
      this.#settleFirst();
    }
  }

  /** Every record under the prefix now, then `current` as of the moment the read began. */
  async #load(entry: Entry, generation: number): Promise<void> {
    const started = performance.now();
    const match = `${this.#keyPrefix}${entry.prefix}`.replace(/[*?[\]\\]/g, "\\$&") + "*";
    let cursor = "0";
    do {
      const [next, found] = await this.#main.scan(cursor, "MATCH", match, "COUNT", 1000);
      cursor = next;
      const names = found.map((k) => k.slice(this.#keyPrefix.length));
      const ttls = names.length ? ((await this.#main.pipeline(names.map((n) => ["pttl", n])).exec()) ?? []) : [];
      for (const [i, name] of names.entries()) {
        const ttl = Number(ttls[i]?.[1]);
        if (ttl > 0) entry.watcher.record(name, ttl);
      }
    } while (cursor !== "0");
    if (generation !== this.#generation) return; // the subscription restarted meanwhile: its own load follows
    entry.loaded = true;
    entry.watcher.current(started);
  }

  #message(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (Array.isArray(parsed) && typeof parsed[0] === "string" && typeof parsed[1] === "number") this.local(parsed[0], parsed[1]);
  }

  #heartbeat(sub: Redis): void {
    if (this.#pinging || sub.status !== "ready") return;
    const [at, generation] = [performance.now(), this.#generation];
    this.#pinging = true;
    sub
      .ping()
      .then(
        () => {
          if (generation === this.#generation) for (const entry of this.#entries) if (entry.loaded) entry.watcher.current(at);
        },
        () => {
          if (generation !== this.#generation) return;
          this.#lose("the Redis subscription stopped answering");
          sub.disconnect(true);
        },
      )
      .finally(() => (this.#pinging = false));
  }

  #lose(why: string): void {
    this.#generation++;
    for (const entry of this.#entries) {
      entry.loaded = false;
      entry.watcher.lost(why);
    }
  }
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));
