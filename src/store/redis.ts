import { Redis } from "ioredis";
import type { Logger } from "../log.js";
import { CHANNEL, PUBLISH_SCRIPT, RedisWatches } from "./redis-watch.js";
import { StoreUnavailableError, ttlMs, type Store, type Watcher } from "./store.js";

/** Every key the gateway writes starts with this, so it can share a Redis database with other users. */
export const KEY_PREFIX = "mcp-oauth-gateway:";

// INCR, and start the window's TTL on the first hit only: atomic because a script runs alone
const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

type WithIncrement = Redis & {
  gatewayIncrement(key: string, windowMs: number): Promise<number>;
  gatewayPublish(key: string, value: string, ms: number, channel: string, message: string): Promise<number>;
};

/**
 * Redis (6.2 or later) for many gateway instances. Redis owns expiry (PX on every write), `add` is
 * `SET NX`, `take` is `GETDEL`: each one command, so atomic across instances. While Redis is
 * unreachable nothing is queued or retried: every call fails at once with StoreUnavailableError
 * (answered 503 + Retry-After) and the client reconnects in the background.
 */
export class RedisStore implements Store {
  readonly #redis: WithIncrement;
  readonly #log: Logger;
  readonly #watches: RedisWatches;
  /** One warning when calls start failing (down, unreachable or hung), one line when they work again. */
  #failing = false;

  private constructor(redis: Redis, log: Logger) {
    redis.defineCommand("gatewayIncrement", { numberOfKeys: 1, lua: INCREMENT });
    redis.defineCommand("gatewayPublish", { numberOfKeys: 1, lua: PUBLISH_SCRIPT });
    this.#redis = redis as WithIncrement;
    this.#log = log;
    this.#watches = new RedisWatches(redis, KEY_PREFIX);
  }

  /** Connect, failing with a readable message when Redis cannot be reached at start. */
  static async open(url: string, log: Logger): Promise<RedisStore> {
    const redis = new Redis(url, {
      keyPrefix: KEY_PREFIX,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: 2000,
      connectTimeout: 5000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
    let cause: Error | undefined;
    // afterwards reported per failing call, in #call; without a listener ioredis would print each one
    redis.on("error", (error: Error) => (cause ??= error));
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw new Error(`cannot reach the Redis store at ${describeUrl(url)}: ${(cause ?? (error as Error)).message}`, { cause: error });
    }
    return new RedisStore(redis, log);
  }

  async get<T>(key: string): Promise<T | undefined> {
    return parse<T>(await this.#call(() => this.#redis.get(key)));
  }

  async put<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    const ms = ttlMs(key, ttlSeconds);
    await this.#call(() => this.#redis.set(key, JSON.stringify(value), "PX", ms));
  }

  async add<T>(key: string, value: T, ttlSeconds: number): Promise<boolean> {
    const ms = ttlMs(key, ttlSeconds);
    return (await this.#call(() => this.#redis.set(key, JSON.stringify(value), "PX", ms, "NX"))) === "OK";
  }

  async take<T>(key: string): Promise<T | undefined> {
    return parse<T>(await this.#call(() => this.#redis.getdel(key)));
  }

  async delete(key: string): Promise<void> {
    await this.#call(() => this.#redis.del(key));
  }

  async increment(key: string, windowSeconds: number): Promise<number> {
    const ms = ttlMs(key, windowSeconds);
    return Number(await this.#call(() => this.#redis.gatewayIncrement(key, ms)));
  }

  async *scan<T>(prefix: string): AsyncIterable<[string, T]> {
    // SCAN's pattern is not prefixed by ioredis, and the keys it returns carry the prefix, which MGET adds again
    const match = `${KEY_PREFIX}${prefix}`.replace(/[*?[\]\\]/g, "\\$&") + "*";
    // SCAN returns a key again when the table shrinks between calls: each is yielded once
    const seen = new Set<string>();
    let cursor = "0";
    do {
      const [next, found] = await this.#call(() => this.#redis.scan(cursor, "MATCH", match, "COUNT", 1000));
      cursor = next;
      const names = found.map((k) => k.slice(KEY_PREFIX.length)).filter((name) => !seen.has(name) && seen.add(name));
      const values = names.length ? await this.#call(() => this.#redis.mget(...names)) : [];
      for (const [i, name] of names.entries()) if (values[i] !== null) yield [name, JSON.parse(values[i]!) as T];
    } while (cursor !== "0");
  }

  async publish<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    const ms = ttlMs(key, ttlSeconds);
    await this.#call(() => this.#redis.gatewayPublish(key, JSON.stringify(value), ms, CHANNEL, JSON.stringify([key, ms])));
    this.#watches.local(key, ms);
  }

  /** Pub/sub on a connection of its own: see RedisWatches. */
  watch(prefix: string, watcher: Watcher): Promise<() => Promise<void>> {
    return this.#watches.watch(prefix, watcher);
  }

  async close(): Promise<void> {
    this.#watches.close();
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #call<R>(command: () => Promise<R>): Promise<R> {
    let result: R;
    try {
      result = await command();
    } catch (error) {
      if (!this.#failing) this.#log.warn(`redis store unreachable, answering 503 until it is back: ${(error as Error).message}`);
      this.#failing = true;
      throw new StoreUnavailableError(`Redis: ${(error as Error).message}`, { cause: error });
    }
    if (this.#failing) this.#log.info("redis store reachable again");
    this.#failing = false;
    return result;
  }
}

const parse = <T>(json: string | null): T | undefined => (json === null ? undefined : (JSON.parse(json) as T));

/** The URL without its password, for messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}
