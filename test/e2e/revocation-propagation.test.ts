import { join } from "node:path";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REVOCATION_BOUND_MS } from "../../src/grants/revocations.js";
import { DEFAULT_APPS, startSimulator } from "../../src/simulator/index.js";
import { startBalancer } from "../support/balancer.js";
import { TestBrowser } from "../support/browser.js";
import { LOGIN } from "../support/config.js";
import { startMcpUpstream, type McpUpstream } from "../support/mcp-upstream.js";
import { mcpInitialize, obtainCode, redeem } from "../support/oauth-steps.js";
import { pollUntil, withDeadline } from "../support/waiting.js";
import { freePort, killAll, launch, cleanEnv, startGatewayProcess, startRedis, tempDir, type GatewayProcess, type RedisServer } from "../support/processes.js";

type Instance = "A" | "B";
const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;
const env = { MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password };
const CANNOT_VOUCH = /warn revocations: the local view cannot vouch/g;

/**
 * Two real gateway processes (A, B) behind one public URL on one store: a grant revoked on A is
 * refused by B within REVOCATION_BOUND_MS (docs/security.md RU5), whether its view is fed or not.
 */
async function twoGateways(store: string[], storeOf: (instance: Instance) => string[] = () => store, mcpUpstream?: McpUpstream) {
  const [simulator, lb] = await Promise.all([startSimulator(), startBalancer()]);
  const upstream = ["--upstream-rs", mcpUpstream?.url ?? simulator.mcpUrl, "--upstream-client-id", app.clientId, "--upstream-api-url", simulator.apiOrigin];
  // an upstream MCP server other than the simulator's: the simulator still signs users in
  if (mcpUpstream)
    upstream.push(
      ...["--upstream-authorize-endpoint", `${simulator.webOrigin}/login/oauth/authorize`],
      ...["--upstream-token-endpoint", `${simulator.webOrigin}/login/oauth/access_token`],
    );
  const start = async (instance: Instance) =>
    startGatewayProcess(["--port", String(await freePort()), "--public-url", lb.url, ...storeOf(instance), ...upstream], { HOME: tempDir("gw-home"), ...env });
  const gw = { A: await start("A"), B: await start("B") } as Record<Instance, GatewayProcess>;
  lb.add("A", gw.A.url);
  lb.add("B", gw.B.url);
  return { simulator, lb, gw, store };
}

type World = Awaited<ReturnType<typeof twoGateways>>;

/** A fresh grant redeemed on A, its access token already verified (and cached) by B. */
async function grantSeenByB({ lb }: World): Promise<{ clientId: string; accessToken: string }> {
  lb.use("A");
  const code = await obtainCode(lb.url, { browser: new TestBrowser() });
  const { status, body } = await redeem(lb.url, code);
  expect(status).toBe(200);
  lb.use("B");
  expect((await mcpInitialize(`${lb.url}/mcp`, `Bearer ${body.access_token}`)).status).toBe(200);
  return { clientId: code.clientId, accessToken: body.access_token! };
}

/**
 * Ask B again and again: how long after `since` it first refused the token as revoked. Meanwhile B may
 * still relay it, and the upstream (whose token /revoke gave back) refuse it: not yet B's refusal.
 */
async function refusedByB({ lb }: World, accessToken: string, since: number): Promise<number> {
  lb.use("B");
  for (;;) {
    const answer = await mcpInitialize(`${lb.url}/mcp`, `Bearer ${accessToken}`);
    const elapsed = performance.now() - since;
    const challenge = answer.headers.get("www-authenticate") ?? "";
    if (answer.status === 401 && challenge.includes("has been revoked")) return elapsed;
    expect([200, 401]).toContain(answer.status);
    if (elapsed > 2 * REVOCATION_BOUND_MS) throw new Error(`B still relays a token revoked ${elapsed.toFixed(0)} ms ago`);
  }
}

async function revokeOnA({ lb }: World, grant: { clientId: string; accessToken: string }): Promise<number> {
  lb.use("A");
  const response = await fetch(`${lb.url}/revoke`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: grant.accessToken, client_id: grant.clientId }).toString(),
  });
  expect(response.status).toBe(200);
  return performance.now();
}

/** `mcp-oauth-gateway revoke --user …` on the store; when it exited. */
async function revokeCommand(store: string[]): Promise<number> {
  const args = ["revoke", "--user", LOGIN.username, ...store, "--upstream-rs", "http://127.0.0.1:9/mcp"];
  const p = launch(process.execPath, ["--import", "tsx", "src/main.ts", ...args], cleanEnv({ HOME: tempDir("gw-home") }));
  const { code } = await p.exited;
  expect(code, p.stderr()).toBe(0);
  expect(p.stdout()).toMatch(/^Ended \d+ grants? of user/);
  return performance.now();
}

describe.each(["Redis", "SQLite"])("RU5 revocation across two gateway processes on one %s store", (name) => {
  let world: World;
  let redis: RedisServer | undefined;
  beforeAll(async () => {
    if (name === "Redis") redis = await startRedis();
    world = await twoGateways(redis ? ["--store", redis.url] : ["--data-dir", join(tempDir("gw-revocation"), "data")]);
  }, 60_000);
  afterAll(async () => {
    killAll();
    await world?.lb.close();
    await world?.simulator.close();
    await redis?.close();
  });

  it(`a token revoked at /revoke on A (RFC 7009) is refused by B within ${REVOCATION_BOUND_MS} ms`, async () => {
    const grant = await grantSeenByB(world);
    const elapsed = await refusedByB(world, grant.accessToken, await revokeOnA(world, grant));
    expect(elapsed).toBeLessThan(REVOCATION_BOUND_MS);
  });

  it(`a user's grants ended by \`mcp-oauth-gateway revoke --user\` are refused by B within ${REVOCATION_BOUND_MS} ms`, async () => {
    const grant = await grantSeenByB(world);
    const elapsed = await refusedByB(world, grant.accessToken, await revokeCommand(world.store));
    expect(elapsed).toBeLessThan(REVOCATION_BOUND_MS);
    expect(world.gw.B.stderr()).not.toMatch(CANNOT_VOUCH);
  });
});

describe("RU5 a gateway whose Redis subscription is down reads the store per request: a revocation still holds at once", () => {
  let world: World;
  let admin: Redis;
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    // A as a Redis user of its own; B as the default user, which the test then denies every channel
    await admin.acl("SETUSER", "publisher", "on", ">publisher-password", "~*", "&*", "+@all");
    const asPublisher = redis.url.replace("//", "//publisher:publisher-password@");
    world = await twoGateways(["--store", redis.url], (instance) => ["--store", instance === "A" ? asPublisher : redis.url]);
  }, 60_000);
  afterAll(async () => {
    killAll();
    admin?.disconnect();
    await world?.lb.close();
    await world?.simulator.close();
    await redis?.close();
  });

  it("B refuses a token revoked on A at its next request, logs once that it reads the store, and recovers when it can subscribe again", async () => {
    const grant = await grantSeenByB(world);
    await admin.acl("SETUSER", "default", "resetchannels");
    await admin.client("KILL", "TYPE", "pubsub");
    await new Promise((r) => setTimeout(r, 300));
    world.lb.use("B");
    expect((await mcpInitialize(`${world.lb.url}/mcp`, `Bearer ${grant.accessToken}`)).status).toBe(200); // served, from the store
    await revokeOnA(world, grant);
    world.lb.use("B");
    const refused = await mcpInitialize(`${world.lb.url}/mcp`, `Bearer ${grant.accessToken}`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain("revoked");
    expect(world.gw.B.stderr().match(CANNOT_VOUCH)).toHaveLength(1);

    await admin.acl("SETUSER", "default", "allchannels");
    const deadline = Date.now() + 10_000;
    while (!world.gw.B.stderr().includes("the local view is current again")) {
      if (Date.now() > deadline) throw new Error(`B never said its view is current again:\n${world.gw.B.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const next = await grantSeenByB(world);
    expect(await refusedByB(world, next.accessToken, await revokeOnA(world, next))).toBeLessThan(REVOCATION_BOUND_MS);
    expect(world.gw.B.stderr().match(CANNOT_VOUCH)).toHaveLength(1);
  });
});

describe("RU5 a revoked grant's open event stream on another gateway process ends within the bound", () => {
  let world: World;
  let upstream: McpUpstream;
  beforeAll(async () => {
    // a stateful MCP server (sessions, a GET stream each) behind both gateways, one SQLite store
    upstream = await startMcpUpstream(() => new McpServer({ name: "streams-upstream", version: "1.0.0" }));
    world = await twoGateways(["--data-dir", join(tempDir("gw-revocation-streams"), "data")], undefined, upstream);
  }, 60_000);
  afterAll(async () => {
    killAll();
    await world?.lb.close();
    await world?.simulator.close();
    await upstream?.close();
  });

  it(`/revoke on A ends B's GET stream of that grant within ${REVOCATION_BOUND_MS} ms, and B's streams of other grants stay open`, async () => {
    const revoked = await grantSeenByB(world);
    const kept = await grantSeenByB(world);
    const [stream, other] = [await openStreamOnB(world, revoked.accessToken), await openStreamOnB(world, kept.accessToken)];
    const since = await revokeOnA(world, revoked);
    const ended = await withDeadline(stream.ended, 3 * REVOCATION_BOUND_MS, "B's end of the revoked grant's stream");
    expect(ended - since).toBeLessThan(REVOCATION_BOUND_MS);
    // B's log comes through a pipe of its own: it may arrive after the stream's end
    const said = await pollUntil(
      () => world.gw.B.stderr(),
      (text) => text.includes("revocations: ended"),
      2_000,
    );
    expect(said).toContain("revocations: ended 1 open /mcp event stream of a revoked grant");
    expect(other.isOpen()).toBe(true);
    // the client that reconnects is refused: the grant is gone, not only its stream
    expect((await mcpInitialize(`${world.lb.url}/mcp`, `Bearer ${revoked.accessToken}`)).status).toBe(401);
    other.close();
  });
});

/** An MCP session on B and its GET event stream, held open: when it ended (performance.now()), whether it still is. */
async function openStreamOnB({ lb }: World, accessToken: string) {
  lb.use("B");
  const initialized = await mcpInitialize(`${lb.url}/mcp`, `Bearer ${accessToken}`);
  const sessionId = initialized.headers.get("mcp-session-id");
  expect(sessionId, "the upstream's session").toBeTruthy();
  await initialized.body?.cancel();
  const abort = new AbortController();
  const response = await fetch(`${lb.url}/mcp`, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "text/event-stream", "mcp-session-id": sessionId!, "mcp-protocol-version": "2025-06-18" },
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  let open = true;
  const reader = response.body!.getReader();
  // read to the end: a stream that is cut, not ended, rejects
  const ended = (async () => {
    while (!(await reader.read()).done);
    open = false;
    return performance.now();
  })();
  ended.catch(() => undefined); // the other stream is aborted by the test itself
  return { ended, isOpen: () => open, close: () => abort.abort() };
}
