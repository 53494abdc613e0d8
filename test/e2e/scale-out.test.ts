import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "../../src/clock.js";
import { deriveKeys } from "../../src/crypto.js";
import { verifyAccessToken } from "../../src/grants/format.js";
import { RATE_RULES } from "../../src/ratelimit.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { startBalancer, type Balancer } from "../support/balancer.js";
import { loginForm, TestBrowser } from "../support/browser.js";
import { authorizeUrl, mcpInitialize, obtainCode, redeem, register, REDIRECT_URI, tokenRequest, clientAuthorizeUrl } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { freePort, killAll, startGatewayProcess, startRedis, type GatewayProcess, type RedisServer } from "../support/processes.js";
import { LOGIN } from "../support/config.js";

type Instance = "A" | "B";
const app = DEFAULT_APPS.find((a) => a.kind === "github_app")!; // expiring tokens: refreshes go upstream
const HOUR = 3600_000;

/**
 * Two real gateway processes (A, B) behind one public URL, sharing one real Redis and no configured
 * secret: any step of a flow may land on either, and single-use records stay single-use across both.
 */
describe("scale-out: two gateway processes, one Redis, one public URL", () => {
  const clock = new ManualClock(); // the simulator's own: moved to expire upstream tokens
  let redis: RedisServer;
  let simulator: Simulator;
  let lb: Balancer;
  let pub: string;
  const gw = {} as Record<Instance, GatewayProcess>;

  beforeAll(async () => {
    [redis, simulator, lb] = await Promise.all([startRedis(), startSimulator({ clock, consent: "page" }), startBalancer()]);
    pub = lb.url;
    const upstream = ["--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId];
    const env = { MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password };
    const start = async () => startGatewayProcess(["--port", String(await freePort()), "--public-url", pub, "--store", redis.url, ...upstream], env);
    // concurrently: both race to write the master secret, first writer wins
    [gw.A, gw.B] = await Promise.all([start(), start()]);
    lb.add("A", gw.A.url);
    lb.add("B", gw.B.url);
  }, 60_000);

  afterAll(async () => {
    killAll();
    await lb?.close();
    await simulator?.close();
  });

  /** Point the balancer at one instance for one step; returns what it served meanwhile ("METHOD /path"). */
  async function via<T>(instance: Instance, step: () => Promise<T>): Promise<[T, string[]]> {
    lb.use(instance);
    const from = lb.served.length;
    const value = await step();
    const served = lb.served.slice(from);
    expect(served.length > 0 && served.every((s) => s.backend === instance), `served: ${JSON.stringify(served)}`).toBe(true);
    return [value, served.map((s) => `${s.method} ${s.path}`)];
  }

  /** Screen 1: GET the form, sign in and approve. Returns the redirect to the upstream and the session cookie. */
  async function signIn(browser: TestBrowser, loginUrl: string): Promise<{ upstreamUrl: string; cookie: string }> {
    const page = await browser.request(loginUrl);
    const form = loginForm(page.text);
    if (page.status !== 200 || !form) throw new Error(`no login form at ${loginUrl}: HTTP ${page.status}`);
    const answer = await browser.request(`${pub}/login`, { form: { ...form, ...LOGIN, decision: "approve" } });
    expect(answer.status).toBe(303);
    const cookie = answer.headers.getSetCookie().find((c) => c.startsWith("mcp-gateway="));
    return { upstreamUrl: answer.location!, cookie: cookie!.split(";")[0]! };
  }

  /** The upstream's pages (its consent form, when shown) up to its redirect to our callback, not followed. */
  async function throughUpstream(browser: TestBrowser, url: string): Promise<URL> {
    for (let hop = 0; hop < 5; hop++) {
      if (url.startsWith(`${pub}/upstream/callback?`)) return new URL(url);
      const page = await browser.request(url);
      const pending = /name="authorization_request" value="([^"]+)"/.exec(page.text)?.[1];
      if (page.location) url = page.location;
      else if (pending) {
        const decide = new URL("/login/oauth/authorize/decide", url).href;
        url = (await browser.request(decide, { form: { authorization_request: pending, decision: "authorize" } })).location!;
      } else throw new Error(`stuck at ${url}: HTTP ${page.status}`);
    }
    throw new Error("too many redirects at the upstream");
  }

  /** From a new authorization request up to the upstream's redirect to the callback, all through the balancer. */
  async function upToCallback(clientId: string) {
    const browser = new TestBrowser();
    const { verifier, challenge } = pkce();
    const params = {
      response_type: "code",
      client_id: clientId,
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "st",
      resource: `${pub}/mcp`,
    };
    const [authorize, servedAuthorize] = await via("B", () => browser.request(authorizeUrl(pub, params)));
    const [login, servedLogin] = await via("A", () => signIn(browser, authorize.location!));
    const callback = await throughUpstream(browser, login.upstreamUrl);
    return { browser, verifier, callback, cookie: login.cookie, served: [servedAuthorize, servedLogin] };
  }

  /** A stateless MCP request (the simulator keeps no session): the JSON-RPC result from the event stream. */
  async function mcpCall(accessToken: string, method: string, params: Record<string, unknown>) {
    const response = await fetch(`${pub}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${accessToken}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method, params }),
    });
    const data = /^data: (.*)$/m.exec(await response.text())?.[1];
    return { status: response.status, message: data === undefined ? undefined : (JSON.parse(data) as { result?: { content: { text: string }[] } }) };
  }

  async function getMeOn(instance: Instance, accessToken: string) {
    const [[init, me], served] = await via(
      instance,
      async () =>
        [await mcpInitialize(`${pub}/mcp`, `Bearer ${accessToken}`), await mcpCall(accessToken, "tools/call", { name: "get_me", arguments: {} })] as const,
    );
    expect(served).toEqual(["POST /mcp", "POST /mcp"]);
    expect(init.status).toBe(200);
    await init.body?.cancel();
    expect(me.status).toBe(200);
    return JSON.parse(me.message!.result!.content[0]!.text) as { login: string };
  }

  it("carries one flow that alternates instances at every step, and a revocation on one holds on the other", async () => {
    const [client, servedRegister] = await via("A", () => register(pub));
    expect(servedRegister).toEqual(["POST /register"]);
    const flow = await upToCallback(client.client_id);
    expect(flow.served).toEqual([["GET /authorize"], ["GET /login", "POST /login"]]);
    expect(flow.browser.visited.filter((u) => u.startsWith(simulator.webOrigin))).toContain(`${simulator.webOrigin}/login/oauth/authorize/decide`);

    const [toClient, servedCallback] = await via("B", () => flow.browser.request(flow.callback.href));
    expect(servedCallback).toEqual(["GET /upstream/callback"]);
    const redirect = new URL(toClient.location!);
    expect(redirect.origin + redirect.pathname).toBe(REDIRECT_URI);
    expect(redirect.searchParams.get("iss")).toBe(pub);
    const code = { clientId: client.client_id, code: redirect.searchParams.get("code")!, verifier: flow.verifier };

    const [issued, servedToken] = await via("A", () => redeem(pub, code));
    expect(servedToken).toEqual(["POST /token"]);
    expect(issued.status).toBe(200);
    expect(await getMeOn("B", issued.body.access_token!)).toMatchObject({ login: simulator.users[0]!.login });

    // The upstream token expires; B learns it at /mcp and A must refresh upstream because of it.
    clock.advance(8 * HOUR + 60_000);
    const [expired] = await via("B", () => mcpInitialize(`${pub}/mcp`, `Bearer ${issued.body.access_token}`));
    expect(expired.status).toBe(401);
    const upstreamTokens = simulator.issuedTokens().access.length;
    const [refreshed, servedRefresh] = await via("A", () =>
      tokenRequest(pub, { grant_type: "refresh_token", refresh_token: issued.body.refresh_token!, client_id: client.client_id }),
    );
    expect(servedRefresh).toEqual(["POST /token"]);
    expect(refreshed.status).toBe(200);
    expect(simulator.issuedTokens().access.length).toBe(upstreamTokens + 1);
    expect(await getMeOn("B", refreshed.body.access_token!)).toMatchObject({ login: simulator.users[0]!.login });

    // OAuth 2.1 §4.1.3: the code replayed on B revokes the grant; A and B both refuse its tokens.
    const [replay] = await via("B", () => redeem(pub, code));
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
    for (const instance of ["A", "B"] as const) {
      const [refused] = await via(instance, () => mcpInitialize(`${pub}/mcp`, `Bearer ${refreshed.body.access_token}`));
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toContain("revoked");
    }
    const [refreshAfter] = await via("A", () =>
      tokenRequest(pub, { grant_type: "refresh_token", refresh_token: refreshed.body.refresh_token!, client_id: client.client_id }),
    );
    expect(refreshAfter.status).toBe(400);
    expect(refreshAfter.body.error).toBe("invalid_grant");
  });

  it("redeems an authorization code raced on both instances exactly once", async () => {
    lb.use("A");
    const { client_id } = await register(pub);
    for (let round = 0; round < 10; round++) {
      const code = await obtainCode(pub, { clientId: client_id });
      const answers = await Promise.all([redeem(gw.A.url, code), redeem(gw.B.url, code)]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      expect(answers.find((a) => a.status === 400)!.body.error).toBe("invalid_grant");
    }
  }, 60_000);

  it("accepts an upstream answer (one state) raced on both instances exactly once", async () => {
    lb.use("A");
    const { client_id } = await register(pub);
    for (let round = 0; round < 4; round++) {
      const flow = await upToCallback(client_id);
      // the same browser (its session cookie) answering twice, once to each instance directly
      const send = async (listenUrl: string) => {
        const response = await fetch(`${listenUrl}${flow.callback.pathname}${flow.callback.search}`, { headers: { cookie: flow.cookie }, redirect: "manual" });
        await response.text();
        return { status: response.status, location: response.headers.get("location") };
      };
      const answers = await Promise.all([send(gw.A.url), send(gw.B.url)]);
      const statuses = answers.map((a) => a.status);
      expect(
        statuses.filter((s) => s === 302),
        `statuses ${statuses.join(", ")}`,
      ).toHaveLength(1);
      expect(statuses.find((s) => s !== 302)).toSatisfy((s: number) => s >= 400 && s < 500);
      const redirect = new URL(answers.find((a) => a.status === 302)!.location!);
      expect(redirect.origin + redirect.pathname).toBe(REDIRECT_URI);
      const issued = await redeem(pub, { clientId: client_id, code: redirect.searchParams.get("code")!, verifier: flow.verifier });
      expect(issued.status).toBe(200);
    }
  }, 60_000);

  it("signs with the one master secret in Redis, written once however many instances start", async () => {
    const client = new Redis(redis.url);
    try {
      expect(await client.keys("mcp-oauth-gateway:meta:*")).toEqual(["mcp-oauth-gateway:meta:secret"]);
      const secret = JSON.parse((await client.get("mcp-oauth-gateway:meta:secret"))!) as string;
      for (const instance of [gw.A, gw.B]) expect(instance.stdout()).toContain("master secret generated once and kept in the store");

      lb.use("A");
      const { body } = await redeem(pub, await obtainCode(pub));
      const [jwt] = body.access_token!.split("~");
      const claims = await verifyAccessToken(deriveKeys(secret), jwt!, { issuer: pub, audience: `${pub}/mcp`, clock: systemClock });
      expect(claims.sub).toBe(LOGIN.username);
      const [onB] = await via("B", () => mcpInitialize(`${pub}/mcp`, `Bearer ${body.access_token}`));
      expect(onB.status).toBe(200);
      await onB.body?.cancel();
    } finally {
      client.disconnect();
    }
  });
  it("counts failed sign-ins on both instances against one limit", async () => {
    lb.use("A");
    const { client_id } = await register(pub);
    const browser = new TestBrowser();
    const start = await browser.request(clientAuthorizeUrl(pub, client_id, { state: "s" }));
    const form = loginForm((await browser.request(start.location!)).text)!;
    const attempt = (instance: Instance, username: string, password: string) =>
      via(instance, async () => (await browser.request(`${pub}/login`, { form: { ...form, username, password, decision: "approve" } })).status);
    // ten failures, alternating, each for another user name (so no per-user back-off starts): the
    // shared per-address counter reaches the limit that one instance alone never saw
    for (let i = 0; i < RATE_RULES.loginFailure.limit; i++) expect((await attempt(i % 2 ? "B" : "A", `guess-${i}`, "wrong"))[0]).toBe(401);
    expect((await attempt("A", LOGIN.username, LOGIN.password))[0]).toBe(429);
    expect((await attempt("B", LOGIN.username, LOGIN.password))[0]).toBe(429);
  });
});
