/**
 * Store backends side by side: latency of each Store operation, and /mcp throughput through a
 * gateway on each backend. /mcp reads no store on a verified token: revocation is checked against the
 * process's revocation view (src/grants/revocations.ts), so the backends should be level here.
 * Backends are measured in alternating rounds of one run; medians are reported.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { systemClock } from "../src/clock.js";
import { silentLogger } from "../src/log.js";
import { openStore } from "../src/store/open.js";
import type { Store } from "../src/store/store.js";
import type { StoreConfig } from "../src/config/types.js";
import { connectWithOAuth } from "../test/support/connect.js";
import { startRedis, tempDir } from "../test/support/processes.js";
import { startStack, type Stack } from "../test/support/stack.js";
import { median, throughput } from "./measure.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const OPS = Number(process.env.BENCH_STORE_OPS ?? 2000);
const OPERATIONS = ["put", "get", "add", "take", "increment"] as const;

/** A client record's size: what the gateway stores most. */
const VALUE = {
  client_id: randomBytes(16).toString("base64url"),
  redirect_uris: ["http://127.0.0.1:33418/callback"],
  client_name: "bench",
  created: Date.now(),
};

async function opLatency(store: Store, op: (typeof OPERATIONS)[number], round: number): Promise<number> {
  const key = (i: number) => `bench:${round}:${i}`;
  const started = performance.now();
  for (let i = 0; i < OPS; i++) {
    if (op === "put") await store.put(key(i), VALUE, 60);
    else if (op === "get") await store.get(key(i));
    else if (op === "add") await store.add(`${key(i)}:a`, VALUE, 60);
    else if (op === "take") await store.take(key(i));
    else await store.increment(`bench:count:${round}`, 60);
  }
  return ((performance.now() - started) * 1000) / OPS;
}

export async function benchStores(): Promise<string[]> {
  const redis = await startRedis({ appendfsync: "everysec" }); // Redis's recommended durability
  const dataDir = tempDir("bench-sqlite");
  const backends: Array<[string, StoreConfig]> = [
    ["memory", { kind: "memory" }],
    ["sqlite", { kind: "sqlite", dataDir }],
    ["redis", { kind: "redis", url: redis.url }],
  ];
  const stores = await Promise.all(backends.map(([, config]) => openStore(config, { clock: systemClock, log: silentLogger })));
  const stacks: Stack[] = [];
  try {
    const latency = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++)
      for (const op of OPERATIONS)
        for (const [i, [name]] of backends.entries()) {
          const k = `${name}:${op}`;
          latency.set(k, [...(latency.get(k) ?? []), await opLatency(stores[i]!, op, round)]);
        }

    for (const [, config] of backends)
      stacks.push(
        await startStack({
          config: { storeConfig: config.kind === "sqlite" ? { kind: "sqlite", dataDir: config.dataDir + "-gw" } : config },
        }),
      );
    const tokens = await Promise.all(stacks.map(async (s) => (await connectWithOAuth(s.mcpUrl)).provider.tokens()!.access_token));
    const rates = backends.map(() => [] as number[]);
    for (const [i, s] of stacks.entries()) await throughput(s.mcpUrl, `Bearer ${tokens[i]}`); // warm-up
    for (let round = 0; round < ROUNDS; round++) for (const [i, s] of stacks.entries()) rates[i]!.push(await throughput(s.mcpUrl, `Bearer ${tokens[i]}`));

    const names = backends.map(([name]) => name);
    const cell = (name: string, op: string) => `${median(latency.get(`${name}:${op}`)!).toFixed(1)} µs`;
    const memoryRate = median(rates[0]!);
    return [
      `Store operation latency (µs per sequential operation, median of ${ROUNDS} rounds of ${OPS}):`,
      "",
      `| operation | ${names.join(" | ")} |`,
      `|---|${names.map(() => "---:").join("|")}|`,
      ...OPERATIONS.map((op) => `| ${op} | ${names.map((n) => cell(n, op)).join(" | ")} |`),
      "",
      "/mcp tools/call get_me through a gateway on each backend, no store read per request (req/s, median; ratio to memory):",
      "",
      `| backend | req/s | ratio |`,
      `|---|---:|---:|`,
      ...names.map((n, i) => `| ${n} | ${median(rates[i]!).toFixed(0)} | ${(median(rates[i]!) / memoryRate).toFixed(2)} |`),
    ];
  } finally {
    for (const s of stacks) await s.close();
    for (const s of stores) await s.close();
    await redis.close();
    for (const dir of [dataDir, `${dataDir}-gw`]) rmSync(dir, { recursive: true, force: true });
  }
}
