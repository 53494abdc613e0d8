import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { TestBrowser } from "../support/browser.js";
import { callGetMe } from "../support/connect.js";
import { mcpInitialize, obtainCode, redeem, REDIRECT_URI, tokenRequest, clientAuthorizeUrl } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { freePort, killAll, startGatewayProcess, startRedis, tempDir, type GatewayProcess, type RedisServer } from "../support/processes.js";
import { LOGIN } from "../support/config.js";

const app = DEFAULT_APPS.find((a) => a.kind === "github_app")!; // its tokens expire, so a refresh can go upstream
const PAST_GITHUB_APP_TOKEN = 8 * 3600_000 + 60_000;

interface StoreUnderTest {
  name: string;
  /** Store flags for the child, and HOME (nothing lands in the developer's home). */
  prepare(): Promise<{ args: string[]; home: string }>;
  close(): Promise<void>;
}

let redis: RedisServer | undefined;
const STORES: StoreUnderTest[] = [
  {
    name: "sqlite (the default)",
    prepare: async () => ({ args: ["--data-dir", tempDir("gateway-restart-data")], home: tempDir("gateway-restart-home") }),
    close: async () => {},
  },
  {
    name: "redis",
    prepare: async () => {
      redis = await startRedis();
      return { args: ["--store", redis.url], home: tempDir("gateway-restart-home") };
    },
    close: async () => redis?.close(),
  },
];

describe.each(STORES)("a gateway killed with SIGKILL and started again on $name", (store) => {
  let simulator: Simulator;
  let clock: ManualClock;
  let gateway: GatewayProcess;
  let browser: TestBrowser;
  let clientId: string;
  let tokens: Record<string, string>;

  beforeAll(async () => {
    clock = new ManualClock();
    simulator = await startSimulator({ clock });
    const { args, home } = await store.prepare();
    const port = await freePort();
    const start = () =>
      startGatewayProcess(
        ["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId, ...args],
        { HOME: home, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password },
      );

    gateway = await start();
    expect(gateway.stdout()).toContain("master secret generated once and kept in the store");
    browser = new TestBrowser();
    const code = await obtainCode(gateway.url, { browser });
    clientId = code.clientId;
    const redeemed = await redeem(gateway.url, code);
    expect(redeemed.status).toBe(200);
    tokens = redeemed.body;
    expect((await callGetMe(gateway.url, tokens.access_token!)).login).toBe(simulator.users[0]!.login);

    await gateway.kill("SIGKILL");
    expect((await gateway.exited).signal).toBe("SIGKILL");
    gateway = await start();
  }, 60_000);

  afterAll(async () => {
    killAll();
    await simulator?.close();
    await store.close();
  });

  it("still accepts the access token issued before the crash at /mcp", async () => {
    expect((await callGetMe(gateway.url, tokens.access_token!)).login).toBe(simulator.users[0]!.login);
  });

  it("still refreshes with the refresh token issued before the crash, upstream too, and the new access token works", async () => {
    clock.advance(PAST_GITHUB_APP_TOKEN); // the upstream token expires at GitHub; the gateway learns it at /mcp
    const refused = await mcpInitialize(`${gateway.url}/mcp`, `Bearer ${tokens.access_token}`);
    expect(refused.status).toBe(401);
    const upstreamBefore = simulator.issuedTokens().access.length;

    const refreshed = await tokenRequest(gateway.url, { grant_type: "refresh_token", refresh_token: tokens.refresh_token!, client_id: clientId });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(tokens.access_token);
    expect(refreshed.body.refresh_token).not.toBe(tokens.refresh_token);
    expect(simulator.issuedTokens().access.length - upstreamBefore).toBe(1); // the sealed upstream refresh token was opened and used
    expect((await callGetMe(gateway.url, refreshed.body.access_token!)).login).toBe(simulator.users[0]!.login);
  });

  it("still knows the client registered before the crash: /authorize sends it to sign-in, not to invalid_client", async () => {
    const { challenge } = pkce();
    const known = await fetch(clientAuthorizeUrl(gateway.url, clientId, { code_challenge: challenge, resource: `${gateway.url}/mcp` }), { redirect: "manual" });
    expect(known.status).toBe(302);
    expect(known.headers.get("location")).toMatch(/^\/login\?request=/);

    const unknown = await fetch(clientAuthorizeUrl(gateway.url, "never-registered", { code_challenge: challenge, resource: `${gateway.url}/mcp` }), {
      redirect: "manual",
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("invalid_client");
  });

  it("keeps the browser signed in: a second authorization of the same client needs no password and its code redeems", async () => {
    const { verifier, challenge } = pkce();
    const start = await browser.request(clientAuthorizeUrl(gateway.url, clientId, { code_challenge: challenge, resource: `${gateway.url}/mcp` }));
    expect(start.location).toMatch(/\/login\?request=/);
    const screen = await browser.request(start.location!);
    expect(screen.status).toBe(200);
    expect(screen.text).toContain(`Signed in as <strong>${LOGIN.username}</strong>`);
    expect(screen.text).not.toContain('name="password"');

    // Wrong credentials on purpose: a sign-in form would refuse them, a signed-in session never sends them.
    const redirect = await browser.authorize(start.location!, { redirectUri: REDIRECT_URI, username: "nobody", password: "wrong" });
    expect(redirect.searchParams.get("iss")).toBe(gateway.url);
    const redeemed = await redeem(gateway.url, { clientId, code: redirect.searchParams.get("code")!, verifier });
    expect(redeemed.status).toBe(200);
    expect((await callGetMe(gateway.url, redeemed.body.access_token!)).login).toBe(simulator.users[0]!.login);
  });
});
