import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseUpstreamsFile } from "../../src/config/file.js";
import type { StdioConfig } from "../../src/config/types.js";
import { systemClock } from "../../src/clock.js";
import { createLogger } from "../../src/log.js";
import type { StdioChild } from "../../src/stdio/child.js";
import { inheritedEnvironment } from "../../src/stdio/env.js";
import { StdioPool } from "../../src/stdio/pool.js";

const MEMORY = join(process.cwd(), "node_modules/.bin/mcp-server-memory");
const ALICE = { user: "alice", clientId: "c1", grantId: "g1" };

let pools: StdioPool[] = [];
let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  pools = [];
  dirs = [];
});

function pool(servers: Record<string, unknown>, options: Partial<StdioConfig> = {}, lines: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), "stdio-pool-"));
  dirs.push(dir);
  const upstreams = parseUpstreamsFile(JSON.stringify({ mcpServers: servers }), join(dir, "gateway.json"), {}, "http://127.0.0.1:1");
  const made = new StdioPool(
    upstreams,
    { dir: join(dir, "stdio"), idleTimeout: 600, maxProcesses: 50, maxPerUser: 4, environment: inheritedEnvironment(process.env), ...options },
    { log: createLogger((l) => lines.push(l)), clock: systemClock },
  );
  pools.push(made);
  return { pool: made, dir };
}

function call(child: StdioChild, id: number, method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  return new Promise((resolve) => {
    child.onmessage = (m) => "id" in m && m.id === id && resolve(m);
    void child.send({ jsonrpc: "2.0", id, method, params });
  });
}

describe("StdioPool", () => {
  it("starts server-memory and answers initialize", async () => {
    const { pool: p } = pool({ memory: { command: MEMORY } });
    const got = await p.acquire("memory", ALICE);
    if (!("child" in got)) throw new Error(got.refused);
    const answer = await call(got.child, 1, "initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } });
    expect(answer).toMatchObject({ result: { serverInfo: { name: "memory-server" } } });
    expect(p.running).toBe(1);
  });
});
