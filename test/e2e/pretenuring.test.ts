import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { deriveKeys, randomToken } from "../../src/crypto.js";
import { issueTokens } from "../../src/grants/issue.js";
import { MemoryStore } from "../../src/store/memory.js";
import { cleanEnv, freePort, launch, stop, waitForStdout } from "../support/processes.js";

/**
 * src/pretenuring.ts: V8's allocation-site pretenuring is off in the gateway's process, or the proxy's
 * exchanges feed it until every request survives each scavenge (docs/performance.md). With
 * `--trace-pretenuring-statistics` V8 prints a line for each allocation site it weighs at a scavenge:
 * none may come under /mcp load, while the same load on a gateway run with `--allocation-site-pretenuring`
 * (V8's default kept) prints them, which shows the tracing and the load are enough to see it.
 */
const SECRET = "pretenuring-test-secret-0123456789abcdefgh";
const REQUESTS = 6000;
const SITE_WEIGHED = /pretenuring: AllocationSite/g;
const TOOLS_CALL = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_me", arguments: {} } });

describe("the gateway's process runs without V8's allocation-site pretenuring (src/pretenuring.ts)", () => {
  let upstream: Server;
  let upstreamUrl = "";

  beforeAll(async () => {
    // the smallest MCP upstream: every POST answered with a JSON-RPC result
    upstream = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"jsonrpc":"2.0","id":1,"result":{"content":[]}}');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

  it(`no allocation site is weighed for pretenuring over ${REQUESTS} proxied requests; with --allocation-site-pretenuring some are`, async () => {
    const off = await weighedUnderLoad([]);
    const on = await weighedUnderLoad(["--allocation-site-pretenuring"]);
    expect(on, "V8's default kept: sites are weighed under the same load").toBeGreaterThan(0);
    expect(off, "the gateway as it runs: no site is weighed").toBe(0);
  }, 120_000);

  /** Start a gateway with `nodeFlags`, send it REQUESTS proxied tools/call, and count the sites V8 weighed meanwhile. */
  async function weighedUnderLoad(nodeFlags: string[]): Promise<number> {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const args = [
      ...["--port", String(port), "--public-url", publicUrl, "--store", "memory"],
      ...["--upstream-rs", `${upstreamUrl}/mcp`, "--upstream-client-id", "test"],
      ...["--upstream-authorize-endpoint", `${upstreamUrl}/authorize`, "--upstream-token-endpoint", `${upstreamUrl}/token`],
    ];
    const env = cleanEnv({ MCP_GATEWAY_SECRET: SECRET, MCP_GATEWAY_PASSWORD: "pretenuring-test-password" });
    const gateway = launch(process.execPath, ["--trace-pretenuring-statistics", ...nodeFlags, "--import", "tsx", "src/main.ts", ...args], env);
    try {
      await waitForStdout(gateway, /listening on http:\/\/\S+\n/, 30_000);
      const from = gateway.stdout().length;
      await proxy(publicUrl, await accessToken(publicUrl));
      return [...gateway.stdout().slice(from).matchAll(SITE_WEIGHED)].length;
    } finally {
      await stop(gateway);
    }
  }
});

/** A token the gateway accepts, minted offline as /token mints one (the same secret, a grant of its own). */
async function accessToken(publicUrl: string): Promise<string> {
  const context = { keys: deriveKeys(SECRET), store: new MemoryStore(), clock: systemClock, issuer: publicUrl, accessTokenTtl: 3600, refreshTokenTtl: 3600 };
  const grant = { grantId: randomToken(16), clientId: "pretenuring-client", sub: "tester", scope: "", resource: `${publicUrl}/mcp` };
  const { access_token } = await issueTokens(context, grant, { access_token: "upstream-token" }, { refresh: false });
  return access_token;
}

/** REQUESTS tools/call through the gateway's /mcp over 16 keep-alive connections, every answer a 200. */
async function proxy(publicUrl: string, token: string): Promise<void> {
  const pool = new Pool(publicUrl, { connections: 16 });
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" };
  let next = 0;
  const statuses = new Map<number, number>();
  const worker = async () => {
    while (next++ < REQUESTS) {
      const { statusCode, body } = await pool.request({ path: "/mcp", method: "POST", headers, body: TOOLS_CALL });
      await body.dump();
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    await pool.close();
  }
  expect(Object.fromEntries(statuses)).toEqual({ 200: REQUESTS });
}
