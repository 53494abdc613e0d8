/**
 * Revocation propagation: two gateway processes (A, B) on one store, SQLite then Redis. For each of N
 * grants: B verifies the token (it is in B's cache), A revokes it (RFC 7009 /revoke), and B is asked
 * again and again until it refuses it as revoked: the time from A's answer to B's first refusal.
 */
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "../src/clock.js";
import { deriveKeys, randomToken } from "../src/crypto.js";
import type { TokenContext } from "../src/grants/format.js";
import { issueTokens } from "../src/grants/issue.js";
import { MemoryStore } from "../src/store/memory.js";
import { startRedis } from "../test/support/processes.js";
import { median, percentile } from "./measure.js";
import { firstLine, freePort, launch, stop, tempDir } from "./processes.js";
import { gatewayEnv, SECRET, TOOLS_CALL, type Upstream } from "./stack.js";

const GRANTS = Number(process.env.BENCH_REVOCATIONS ?? 20);
const GIVE_UP_MS = 5000;

export interface Propagation {
  grants: number;
  /** Milliseconds from A's /revoke answer to B's first refusal, per backend. */
  ms: Map<"sqlite" | "redis", number[]>;
}

async function gatewayOn(store: string[], publicUrl: string, port: number, upstream: Upstream, dir: string, name: string): Promise<ChildProcess> {
  const up = new URL(upstream.mcpUrl).origin;
  const env = gatewayEnv();
  const args = [
    ...["--port", String(port), "--public-url", publicUrl, ...store, "--upstream-rs", upstream.mcpUrl, "--upstream-client-id", "bench"],
    ...["--upstream-authorize-endpoint", `${up}/authorize`, "--upstream-token-endpoint", `${up}/token`],
  ];
  const logPath = join(dir, `${name}.stderr`);
  const log = openSync(logPath, "w");
  const child = launch(process.execPath, ["dist/main.js", ...args], { env, stdio: ["ignore", "pipe", log] });
  closeSync(log);
  await firstLine(child, /listening on http:\/\/\S+/, 60_000, () => readFileSync(logPath, "utf8").slice(-2000));
  return child;
}

const post = (url: string, authorization: string) =>
  fetch(url, {
    method: "POST",
    headers: { authorization, accept: "application/json, text/event-stream", "content-type": "application/json" },
    body: TOOLS_CALL,
  });

/** One backend: N grants minted for a client registered on A, each revoked on A and watched on B. */
async function propagation(store: string[], upstream: Upstream, dir: string): Promise<number[]> {
  const [portA, portB] = [await freePort(), await freePort()];
  const publicUrl = `http://127.0.0.1:${portA}`; // one public URL (issuer, audience) for both, as behind a balancer
  const a = await gatewayOn(store, publicUrl, portA, upstream, dir, "a");
  const b = await gatewayOn(store, publicUrl, portB, upstream, dir, "b");
  try {
    const registered = await fetch(`${publicUrl}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:33418/callback"], token_endpoint_auth_method: "none" }),
    });
    const { client_id } = (await registered.json()) as { client_id: string };
    const ctx: TokenContext = {
      keys: deriveKeys(SECRET),
      store: new MemoryStore(),
      clock: systemClock,
      issuer: publicUrl,
      accessTokenTtl: 3600,
      refreshTokenTtl: 86_400,
    };
    const times: number[] = [];
    for (let i = 0; i < GRANTS; i++) {
      const grant = { grantId: randomToken(16), clientId: client_id, sub: "bench", scope: "", resource: `${publicUrl}/mcp` };
      const { access_token } = await issueTokens(ctx, grant, { access_token: "upstream-token" }, { refresh: false });
      const onB = `http://127.0.0.1:${portB}/mcp`;
      if ((await post(onB, `Bearer ${access_token}`)).status !== 200) throw new Error("B refused a fresh token");
      const revoked = await fetch(`${publicUrl}/revoke`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: access_token, client_id }).toString(),
      });
      if (revoked.status !== 200) throw new Error(`/revoke on A answered ${revoked.status}`);
      const since = performance.now();
      for (;;) {
        const answer = await post(onB, `Bearer ${access_token}`);
        await answer.arrayBuffer();
        if (answer.status === 401) break;
        if (performance.now() - since > GIVE_UP_MS) throw new Error(`B still accepts a token revoked ${GIVE_UP_MS} ms ago`);
      }
      times.push(performance.now() - since);
    }
    return times;
  } finally {
    await stop(a);
    await stop(b);
  }
}

export async function revocationPropagation(upstream: Upstream): Promise<Propagation> {
  const dir = tempDir("bench-revocation");
  const redis = await startRedis({ appendfsync: "everysec" });
  try {
    const sqlite = await propagation(["--store", "sqlite", "--data-dir", join(dir, "data")], upstream, dir);
    const viaRedis = await propagation(["--store", redis.url], upstream, dir);
    return {
      grants: GRANTS,
      ms: new Map([
        ["sqlite", sqlite],
        ["redis", viaRedis],
      ]),
    };
  } finally {
    await redis.close();
  }
}

/** `median (p95, max)` in ms. */
export const describePropagation = (ms: readonly number[]): string =>
  `${median(ms).toFixed(1)} ms (p95 ${percentile(ms, 95).toFixed(1)}, max ${Math.max(...ms).toFixed(1)})`;
