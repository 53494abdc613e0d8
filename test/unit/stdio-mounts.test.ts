import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { parseUpstreamsFile } from "../../src/config/file.js";
import { deriveKeys } from "../../src/crypto.js";
import { silentLogger } from "../../src/log.js";
import { PublicOrigins } from "../../src/origins.js";
import { MemoryStore } from "../../src/store/memory.js";
import { Mounts } from "../../src/upstream/mounts.js";

const PUBLIC_URL = "https://gw.example.com";

function mounts(servers: Record<string, unknown>, fetched: string[]): Mounts {
  const upstreams = parseUpstreamsFile(JSON.stringify({ mcpServers: servers }), "gateway.json", { KEY: "Kx7Yz2Wq" }, PUBLIC_URL);
  return new Mounts(upstreams, new PublicOrigins(PUBLIC_URL, []), {
    store: new MemoryStore(),
    keys: deriveKeys("k".repeat(32)),
    clock: systemClock,
    fetch: (url) => {
      fetched.push(url);
      return Promise.reject(new Error("no network in this test"));
    },
    log: silentLogger,
    offersClientMetadata: false,
  });
}

describe("Mounts: a local (stdio) server", () => {
  it("is mounted at /mcp/<name> without a URL: nothing fetches, the banner names the program, never its arguments", async () => {
    const fetched: string[] = [];
    const all = mounts(
      {
        memory: { command: "/opt/bin/mcp-server-memory", args: ["--key=${KEY}"], env: { MEMORY_FILE_PATH: "{{userDir}}/m.jsonl" } },
        fetch: { command: "uvx", args: ["mcp-server-fetch"], shared: true },
        open: { url: "http://127.0.0.1:9000/mcp", auth: "none" },
      },
      fetched,
    );
    const memory = all.byName("memory")!;
    expect(memory.resource).toBe(`${PUBLIC_URL}/mcp/memory`);
    expect(memory.signsUsersIn).toBe(false);
    expect(await memory.mode()).toBe("none");
    expect(await memory.describe()).toBe("stdio server mcp-server-memory (per grant), started on first use");
    expect(memory.advertisedScopes()).toBeUndefined();
    expect(all.describe()).toEqual([
      "  MCP URLs for clients:",
      `    ${PUBLIC_URL}/mcp/memory  →  stdio: mcp-server-memory (per grant)`,
      `    ${PUBLIC_URL}/mcp/fetch  →  stdio: uvx (shared)`,
      `    ${PUBLIC_URL}/mcp/open  →  http://127.0.0.1:9000/mcp  (none)`,
    ]);
    expect(all.describe().join("\n")).not.toContain("Kx7Yz2Wq");
    expect(fetched).toEqual([]);
  });
});
