import type { Clock } from "../clock.js";
import type { StoreConfig } from "../config/types.js";
import type { Logger } from "../log.js";
import { MemoryStore } from "./memory.js";
import { describeUrl, RedisStore } from "./redis.js";
import { DATABASE_FILE, SqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";

/** The configured backend, opened and ready. Drivers load only when chosen. */
export function openStore(config: StoreConfig, deps: { clock: Clock; log: Logger }): Promise<Store> {
  switch (config.kind) {
    case "memory":
      return Promise.resolve(new MemoryStore(deps.clock));
    case "sqlite":
      return SqliteStore.open(config.dataDir, deps.clock);
    case "redis":
      return RedisStore.open(config.url, deps.log);
  }
}

/** One line for the banner and logs: where state lives, without credentials. */
export function describeStore(config: StoreConfig): string {
  switch (config.kind) {
    case "memory":
      return "memory (nothing kept after the process ends)";
    case "sqlite":
      return `sqlite ${config.dataDir}/${DATABASE_FILE}`;
    case "redis":
      return `redis ${describeUrl(config.url)}`;
  }
}
