import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_AUTHORIZATION_REQUEST_BYTES } from "../../src/as/authorize.js";
import { RATE_RULES } from "../../src/ratelimit.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { DATABASE_FILE } from "../../src/store/sqlite.js";
import { TestBrowser } from "../support/browser.js";
import { clientAuthorizeUrl, obtainCode, redeem, register } from "../support/oauth-steps.js";
import { freePort, killAll, startGatewayProcess, tempDir, type GatewayProcess } from "../support/processes.js";
import { LOGIN } from "../support/config.js";

/**
 * docs/security.md HI5: floods of unauthenticated /authorize and /login requests, as large as the
 * gateway accepts, from one address and then from 50 (a trusted proxy's X-Forwarded-For), against a
 * gateway process on each local store. What they may leave behind is bounded by the per-address
 * limit: at most RATE_RULES.authorize.limit pending requests per address and window, each at most
 * MAX_AUTHORIZATION_REQUEST_BYTES, no session at all; the process's memory grows by at most
 * RSS_GROWTH_MB; and the user signs in as before.
 */
const FLOOD = 20_000;
const ADDRESSES = 50;
const CONCURRENCY = 16;
const RSS_GROWTH_MB = 150;
const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

/** `count` requests, CONCURRENCY at a time; the statuses seen, with how often. */
async function flood(count: number, send: (i: number) => Promise<Response>): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const response = await send(next++);
      await response.arrayBuffer();
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return statuses;
}

describe.each(["sqlite", "memory"] as const)("HI5 a flood of unauthenticated sign-in requests (%s store)", (store) => {
  let simulator: Simulator;
  let gateway: GatewayProcess;
  let home: string;
  let clientId: string;
  /** The largest request the gateway takes: the longest state and scope it accepts. */
  let maximal: (n: number) => string;
  beforeAll(async () => {
    simulator = await startSimulator();
    home = tempDir("gateway-flood");
    const port = await freePort();
    gateway = await startGatewayProcess(
      [
        ...["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--store", store, "--trust-proxy", "loopback"],
        ...["--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId, "--upstream-api-url", simulator.apiOrigin],
      ],
      { HOME: home, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password },
    );
    clientId = (await register(gateway.url)).client_id;
    maximal = (n: number) =>
      clientAuthorizeUrl(gateway.url, clientId, {
        resource: `${gateway.url}/mcp`,
        state: `${n}:`.padEnd(1024, "s"),
        scope: Array.from({ length: 40 }, (_, i) => `scope-${i}-`.padEnd(24, "x")).join(" "),
      });
  }, 60_000);
  afterAll(async () => {
    await gateway?.kill();
    await simulator?.close();
    killAll();
  });

  it("leaves bounded state and memory, and the user still signs in", async () => {
    // warm up first, so the growth measured is what the flood leaves, not the JIT's first meal
    const warm = await flood(500, (i) => fetch(`${gateway.url}/login?request=${i}`, { headers: { "x-forwarded-for": "192.0.2.1" } }));
    expect([...warm.keys()].every((s) => s < 500)).toBe(true);
    const baseline = rssMb(gateway.child.pid!);

    const pendingIds: string[] = [];
    const send = (address: (i: number) => string) => (i: number) => {
      const headers = { "x-forwarded-for": address(i) };
      if (i % 2 === 0)
        return fetch(maximal(i), { headers, redirect: "manual" }).then((response) => {
          const id = new URL(response.headers.get("location") ?? "/", gateway.url).searchParams.get("request");
          if (id) pendingIds.push(id);
          return response;
        });
      // cookieless Screen 1 for a pending request, or for one that does not exist
      const request = pendingIds[i % Math.max(1, pendingIds.length)] ?? "x".repeat(99);
      return fetch(`${gateway.url}/login?request=${encodeURIComponent(request)}`, { headers });
    };
    const fromOne = await flood(
      FLOOD,
      send(() => "198.51.100.1"),
    );
    // consecutive requests share an address, so each of the 50 sends both kinds
    const fromMany = await flood(
      FLOOD,
      send((i) => `203.0.113.${(i >> 1) % ADDRESSES}`),
    );
    for (const statuses of [fromOne, fromMany]) {
      expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
      expect(statuses.get(429)).toBeGreaterThan(FLOOD / 2);
    }

    const grown = rssMb(gateway.child.pid!) - baseline;
    console.log(`HI5 ${store}: one address ${JSON.stringify([...fromOne])}, 50 addresses ${JSON.stringify([...fromMany])}, RSS +${grown.toFixed(1)} MB`);
    expect(grown).toBeLessThan(RSS_GROWTH_MB);
    if (store === "sqlite") {
      const db = new Database(join(home, ".mcp-oauth-gateway", DATABASE_FILE), { readonly: true });
      const count = (prefix: string) =>
        db
          .prepare<[string], { n: number; bytes: number | null }>("SELECT count(*) AS n, sum(length(value)) AS bytes FROM kv WHERE key LIKE ?")
          .get(`${prefix}%`)!;
      const pending = count("authreq:");
      const sessions = count("sess:");
      db.close();
      const addresses = 1 + ADDRESSES;
      console.log(`HI5 sqlite: ${pending.n} pending requests, ${pending.bytes ?? 0} bytes, ${sessions.n} sessions`);
      expect(pending.n).toBeLessThanOrEqual(addresses * RATE_RULES.authorize.limit);
      expect(pending.bytes ?? 0).toBeLessThanOrEqual(addresses * RATE_RULES.authorize.limit * MAX_AUTHORIZATION_REQUEST_BYTES);
      expect(sessions.n).toBe(0);
    }

    // from its own address the user signs in as before
    const code = await obtainCode(gateway.url, { browser: new TestBrowser(), clientId });
    expect(code.code).toBeTruthy();
    expect((await redeem(gateway.url, code)).status).toBe(200);
  }, 240_000);
});
