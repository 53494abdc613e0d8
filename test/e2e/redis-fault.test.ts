import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REVOCATION_BOUND_MS } from "../../src/grants/revocations.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { TestBrowser } from "../support/browser.js";
import { callGetMe } from "../support/connect.js";
import { obtainCode, redeem, register, REDIRECT_URI, tokenRequest, clientAuthorizeUrl } from "../support/oauth-steps.js";
import { freePort, killAll, startGatewayProcess, startRedis, tempDir, type GatewayProcess, type RedisServer } from "../support/processes.js";
import { LOGIN } from "../support/config.js";

const app = DEFAULT_APPS.find((a) => a.kind === "github_app")!;
const UNREACHABLE_WARNING = /warn redis store unreachable/;

/** Poll until `condition` holds; how long it took. */
async function until(what: string, condition: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - started;
}

describe("a gateway on Redis while Redis goes away and comes back", () => {
  let redis: RedisServer;
  let simulator: Simulator;
  let gateway: GatewayProcess;
  let clientId: string;
  let tokens: Record<string, string>;
  /** Registered (201) right before Redis stopped. */
  let lastClientId: string;
  /** A sign-in page that was pending when Redis stopped. */
  let loginPage: string;
  const secretsSeen: string[] = [];

  beforeAll(async () => {
    [redis, simulator] = await Promise.all([startRedis(), startSimulator()]);
    const port = await freePort();
    const args = ["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--store", redis.url];
    const upstream = ["--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId];
    const env = { MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password };
    gateway = await startGatewayProcess([...args, ...upstream], { HOME: tempDir("gateway-redis-fault-home"), ...env });
  }, 30_000);

  afterAll(async () => {
    killAll();
    await simulator?.close();
    await redis?.close();
  });

  /** /mcp, /register, /token (JSON) and /authorize, /login (HTML) in turn, all in parallel. */
  async function expectAll503(count: number): Promise<void> {
    const post =
      (path: string, type: string, body: string, headers: Record<string, string> = {}) =>
      () =>
        fetch(`${gateway.url}${path}`, { method: "POST", headers: { "content-type": type, ...headers }, body });
    const page = (url: string) => () => fetch(url, { redirect: "manual" });
    const mcpHeaders = { authorization: `Bearer ${tokens.access_token}`, accept: "application/json, text/event-stream" };
    const refresh = new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token!, client_id: clientId }).toString();
    const requests: { kind: "json" | "html"; send: () => Promise<Response> }[] = [
      { kind: "json", send: post("/mcp", "application/json", JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }), mcpHeaders) },
      { kind: "json", send: post("/register", "application/json", JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" })) },
      { kind: "json", send: post("/token", "application/x-www-form-urlencoded", refresh) },
      { kind: "html", send: page(clientAuthorizeUrl(gateway.url, clientId, { resource: `${gateway.url}/mcp` })) },
      { kind: "html", send: page(loginPage) },
    ];
    const answers = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const { kind, send } = requests[i % requests.length]!;
        const response = await send();
        return {
          kind,
          status: response.status,
          retryAfter: response.headers.get("retry-after"),
          type: response.headers.get("content-type") ?? "",
          body: await response.text(),
        };
      }),
    );
    for (const a of answers) {
      expect(a).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
      if (a.kind === "json") expect(JSON.parse(a.body)).toMatchObject({ error: "temporarily_unavailable" });
      else expect(a.type).toMatch(/^text\/html/);
      expect(a.body).toContain("temporarily_unavailable");
    }
  }

  it("registers, authorizes and calls a tool while Redis is up", async () => {
    const code = await obtainCode(gateway.url, { browser: new TestBrowser() });
    clientId = code.clientId;
    const redeemed = await redeem(gateway.url, code);
    expect(redeemed.status).toBe(200);
    tokens = redeemed.body;
    secretsSeen.push(
      code.code,
      code.verifier,
      tokens.access_token!,
      tokens.refresh_token!,
      ...tokens.access_token!.split("~"),
      ...tokens.refresh_token!.split("~"),
    );
    expect((await callGetMe(gateway.url, tokens.access_token!)).login).toBe(simulator.users[0]!.login);

    const pending = await fetch(clientAuthorizeUrl(gateway.url, clientId, { resource: `${gateway.url}/mcp` }), { redirect: "manual" });
    expect(pending.status).toBe(302);
    loginPage = new URL(pending.headers.get("location")!, gateway.url).href;
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
  });

  it("answers 503 temporarily_unavailable with Retry-After at every store-backed endpoint while Redis is down, and stays up", async () => {
    lastClientId = (await register(gateway.url, { client_name: "registered just before the outage" })).client_id;
    await redis.stop();

    // right after the connection drops, and again once the gateway has noticed and keeps reconnecting
    await expectAll503(50);
    await until("the unreachable warning is logged", () => UNREACHABLE_WARNING.test(gateway.stderr()), 5_000);
    await expectAll503(50);

    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(gateway.child.exitCode).toBeNull();
    expect(gateway.child.signalCode).toBeNull();
  });

  it("serves again within 10 s of Redis returning, without a restart, having lost nothing it acknowledged", async () => {
    await redis.start();
    expect(await until("/readyz answers 200", async () => (await fetch(`${gateway.url}/readyz`)).status === 200, 10_000)).toBeLessThan(10_000);
    expect(gateway.child.exitCode).toBeNull();

    expect((await callGetMe(gateway.url, tokens.access_token!)).login).toBe(simulator.users[0]!.login);
    for (const known of [clientId, lastClientId]) {
      const response = await fetch(clientAuthorizeUrl(gateway.url, known, { resource: `${gateway.url}/mcp` }), { redirect: "manual" });
      expect(response.status, `client ${known}`).toBe(302);
      expect(response.headers.get("location")).toMatch(/^\/login\?request=/);
    }
    const refreshed = await tokenRequest(gateway.url, { grant_type: "refresh_token", refresh_token: tokens.refresh_token!, client_id: clientId });
    expect(refreshed.status).toBe(200);
    secretsSeen.push(refreshed.body.access_token!, refreshed.body.refresh_token!);
    expect((await callGetMe(gateway.url, refreshed.body.access_token!)).login).toBe(simulator.users[0]!.login);
    expect((await register(gateway.url)).client_id).toMatch(/\S/);
  });

  // A hung Redis takes no revocation, so /mcp may go on from the revocation view until it can no longer vouch (RU5)
  it(`answers /mcp 503 within the command timeout once Redis has hung for ${REVOCATION_BOUND_MS} ms, and serves again when it wakes`, async () => {
    redis.pause();
    try {
      await new Promise((r) => setTimeout(r, REVOCATION_BOUND_MS + 100));
      const started = Date.now();
      const response = await fetch(`${gateway.url}/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens.access_token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      redis.resume();
    }
    await until("/readyz answers 200", async () => (await fetch(`${gateway.url}/readyz`)).status === 200, 10_000);
    expect((await callGetMe(gateway.url, tokens.access_token!)).login).toBe(simulator.users[0]!.login);
  });

  it("logs each outage once and never a token or the password", () => {
    const log = gateway.stderr();
    const warnings = log.split("\n").filter((line) => UNREACHABLE_WARNING.test(line));
    expect(warnings).toHaveLength(2); // Redis stopped, then Redis hung
    expect(log).toContain("redis store reachable again");
    expect(log).not.toMatch(/\berror\b/);
    for (const secret of [...secretsSeen, LOGIN.password, app.clientSecrets[0]!]) expect(log).not.toContain(secret);
  });
});
