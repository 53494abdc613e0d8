import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError } from "./errors.js";
import { label, type Reader } from "./options.js";
import type { StoreConfig } from "./types.js";

/** `--store` and `--data-dir`; the demo keeps its state in memory unless told otherwise. */
export function parseStore(read: Reader, demo: boolean, home: string | undefined): StoreConfig {
  const raw = read.value("store", demo ? "memory" : undefined);
  if (raw === "sqlite") {
    const dir = read.value("data-dir");
    return { kind: "sqlite", dataDir: resolve(dir === "~" || dir.startsWith("~/") ? join(home ?? homedir(), dir.slice(1)) : dir) };
  }
  if (read.given("data-dir") !== undefined) throw new ConfigError(`${label("data-dir")} is for the sqlite store only: drop it, or choose --store sqlite`);
  if (raw === "memory") return { kind: "memory" };
  if (/^rediss?:\/\//i.test(raw)) {
    if (!URL.canParse(raw))
      throw new ConfigError(`${label("store")} is not a valid Redis URL: write redis://[:password@]host[:port][/db] or rediss://… for TLS`);
    return { kind: "redis", url: raw };
  }
  const shown = raw.includes("@") ? "" : ` "${raw}"`; // a mistyped Redis URL may hold its password
  throw new ConfigError(`${label("store")}${shown} is not a store: use sqlite, memory, or a redis:// URL`);
}

/** `--workers`: more than one process only on a store they all reach, and not for the demo, whose simulator lives in one process. */
export function parseWorkers(read: Reader, demo: boolean, store: StoreConfig, stdioServers: readonly string[] = []): number {
  const workers = read.value("workers");
  if (workers === 1) return 1;
  if (demo) throw new ConfigError(`${label("workers")} ${workers}: the demo runs in one process (its simulator lives there): drop --workers`);
  // a stdio bridge session lives in one worker's memory (connections are round-robin), and each worker would run its own processes per user
  if (stdioServers.length)
    throw new ConfigError(
      `${label("workers")} ${workers} cannot serve local (stdio) servers (${stdioServers.join(", ")}): their sessions and processes live in one process: use --workers 1`,
    );
  if (store.kind === "memory")
    throw new ConfigError(
      `${label("workers")} ${workers} needs a store every worker shares, and --store memory lives inside one process: use --store sqlite or a redis:// URL, or --workers 1`,
    );
  return workers;
}
