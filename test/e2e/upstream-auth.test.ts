import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetch } from "undici";
import type { Gateway } from "../../src/gateway.js";
import { connectWithOAuth } from "../support/connect.js";
import { TestBrowser } from "../support/browser.js";
import { authorizationRequest, mcpInitialize, register, REDIRECT_URI, grantFor as grant, refreshFor as refresh } from "../support/oauth-steps.js";
import { startMcpUpstream, type McpUpstream } from "../support/mcp-upstream.js";
import { startMultiStack, whoamiServer, type MultiStack } from "../support/multi-stack.js";
import { LOGIN, type ServerEntry } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";
import { freePort, tempDir } from "../support/processes.js";
import { expectRefusal } from "../support/refusal.js";

/** How many requests each upstream of the stack has received so far. */
const upstreamTraffic = (s: MultiStack) => ({
  internal: s.internal.requests.length,
  provider: s.oidc.providerRequests.length,
  oidcMcp: s.oidc.mcpRequests.length,
  simulator: s.simulator.requests.length,
  ...(s.plain ? { plain: s.plain.requests.length } : {}),
});

async function status(url: string, authorization?: string): Promise<number> {
  const response = await mcpInitialize(url, authorization);
  await response.body?.cancel();
  return response.status;
}

async function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** A gateway serving `servers` from a config file: by default on an ephemeral port with a memory store. */
async function configuredGateway(
  configFile: string,
  servers: Record<string, ServerEntry>,
  o: { port?: number; dataDir?: string; secret?: string; env?: Record<string, string> } = {},
): Promise<Gateway> {
  return startTestGateway({
    mcpServers: servers,
    source: configFile,
    ...(o.env ? { env: o.env } : {}),
    ...(o.port ? { port: o.port } : {}),
    ...(o.dataDir ? { storeConfig: { kind: "sqlite", dataDir: o.dataDir } } : {}),
    ...(o.secret ? { secret: o.secret } : {}),
  });
}

/**
 * Issue 6, upstream auth per upstream: what the gateway does for upstreams without OAuth of their
 * own (detected none, a static key), and what happens to their grants on refresh, revocation and
 * removal from the config.
 */
describe("an upstream with no auth key at all (detect)", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    stack = await startMultiStack({ plain: { auth: undefined } });
  }, 60_000);
  afterAll(() => stack?.close());

  it("is detected as needing no credentials, while the client still authorizes at the gateway", async () => {
    const mount = stack.gateway.mounts.byResource(stack.urls.plain!)!;
    expect(mount.config.auth).toBe("detect");

    // connectWithOAuth insists the first connect is refused with 401 (by the gateway: the upstream wants nothing)
    const { client } = await connectWithOAuth(stack.urls.plain!);
    try {
      const result = await client.callTool({ name: "whoami", arguments: {} });
      expect((result.content as { text: string }[])[0]!.text).toBe("nobody");
    } finally {
      await client.close();
    }
    await expect(mount.mode()).resolves.toBe("none");

    const seen = stack.plain!.requests;
    expect(seen.length).toBeGreaterThan(1);
    for (const r of seen) {
      expect(r.authorization).toBeUndefined();
      expect(r.headers["x-api-key"]).toBeUndefined();
    }
    // the premise: the upstream answers an unauthenticated ping, and not with 401
    const ping = await fetch(stack.plain!.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
    });
    await ping.body?.cancel();
    expect(ping.status).not.toBe(401);
    expect(ping.status).not.toBe(403);
  });
});

describe("an upstream that cannot be reached at sign-in (detect)", () => {
  let configDir: string;
  let port: number;
  let gateway: Gateway | undefined;
  let late: Server | undefined;
  let goneUrl: string;

  beforeAll(async () => {
    configDir = tempDir("gateway-unreachable-config");
    port = await freePort();
    let gonePort = await freePort();
    while (gonePort === port) gonePort = await freePort();
    goneUrl = `http://127.0.0.1:${gonePort}/mcp`;
    gateway = await configuredGateway(join(configDir, "gateway.json"), {
      later: { url: `http://127.0.0.1:${port}/mcp` },
      // OAuth known, its authorization server to be discovered from a server that is not there
      gone: { url: goneUrl, oauth: {} },
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await closeServer(late);
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  const signIn = async (name = "later") => {
    const base = gateway!.publicUrl;
    const { client_id } = await register(base);
    const { url, state } = authorizationRequest(base, client_id, { resource: `${base}/mcp/${name}` });
    const browser = new TestBrowser();
    return { end: await browser.walk(url, { redirectUri: REDIRECT_URI, ...LOGIN }), browser, state };
  };

  const refusedForNow = async (cause: string, name = "later") => {
    const { end, browser, state } = await signIn(name);
    const page = expectRefusal(end, browser, { state, issuer: gateway!.publicUrl, error: "temporarily_unavailable", at: "/login" });
    expect(page).toContain("This sign-in cannot go on now");
    expect(page).toContain(`The gateway cannot use ${name} now: ${cause}`);
  };

  it("says an OAuth upstream whose metadata cannot be fetched cannot be reached, not that it publishes none", async () => {
    await refusedForNow(`${goneUrl} cannot be reached (fetch failed)`, "gone");
  });

  it("sends the user back to the client with temporarily_unavailable, asks again on each use, and succeeds once the upstream answers", async () => {
    await refusedForNow("fetch failed");

    // up, but answering 503, which says nothing about credentials: still undecided
    let status = 503;
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(status, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":0,"result":{}}');
    });
    late = server;
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    await refusedForNow("the upstream answered HTTP 503 to an unauthenticated request");

    // now it answers without asking for credentials
    status = 200;
    const again = await signIn();
    if (!("redirect" in again.end)) throw new Error(`HTTP ${again.end.status} ${again.end.text.slice(0, 300)}`);
    expect(again.end.redirect.searchParams.get("code")).toBeTruthy();
    expect(await gateway!.mounts.all[0]!.mode()).toBe("none");
  });
});

describe("a static upstream that refuses the gateway's API key", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    stack = await startMultiStack({ env: { INTERNAL_API_KEY: "not-the-key-the-upstream-wants" } });
  }, 60_000);
  afterAll(() => stack?.close());

  it("answers an authorized client 502 with a JSON-RPC error for its request, not 401", async () => {
    const { tokens } = await grant(stack.gateway.publicUrl, stack.urls.internal);
    const before = stack.internal.requests.length;
    const response = await fetch(stack.urls.internal, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${tokens.access_token}` },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: "req-42",
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
      }),
    });
    // re-authorizing cannot fix the gateway's own credentials: no challenge sends the client to do so
    expect(response.status).toBe(502);
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(await response.json()).toEqual({
      jsonrpc: "2.0",
      id: "req-42",
      error: { code: -32603, message: "The upstream refused the gateway's credentials." },
    });
    // it was the upstream that refused: it got the request, with the configured (wrong) key
    const seen = stack.internal.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers["x-api-key"]).toBe("not-the-key-the-upstream-wants");
  });
});

describe("a static upstream that answers the gateway 403", () => {
  let configDir: string;
  let forbidding: Server | undefined;
  let gateway: Gateway | undefined;
  const seen: (string | undefined)[] = [];

  beforeAll(async () => {
    configDir = tempDir("gateway-forbidden-config");
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      req.resume();
      res.writeHead(403, { "content-type": "application/json" }).end('{"error":"forbidden"}');
    });
    forbidding = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
    gateway = await configuredGateway(join(configDir, "gateway.json"), { forbidding: { url, auth: { bearer: "revoked-service-token" } } });
  });
  afterAll(async () => {
    await gateway?.close();
    await closeServer(forbidding);
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it("answers the client 502 -32603 as for a 401", async () => {
    const base = gateway!.publicUrl;
    const { tokens } = await grant(base, `${base}/mcp/forbidding`);
    const response = await mcpInitialize(`${base}/mcp/forbidding`, `Bearer ${tokens.access_token}`);
    expect(seen).toEqual(["Bearer revoked-service-token"]);
    expect(response.status).toBe(502);
    expect(await response.json()).toEqual({ jsonrpc: "2.0", id: 1, error: { code: -32603, message: "The upstream refused the gateway's credentials." } });
  });
});

describe("grants for a static upstream, and the gateway's challenges", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    stack = await startMultiStack({ github: { oauth: { scope: "repo read:org" } } });
  }, 60_000);
  afterAll(() => stack?.close());

  it("refreshes without asking any upstream, and the new access token works", async () => {
    const base = stack.gateway.publicUrl;
    const { clientId, tokens } = await grant(base, stack.urls.internal);
    stack.clock.advance(3601_000); // the access token has expired
    expect(await status(stack.urls.internal, `Bearer ${tokens.access_token}`)).toBe(401);

    const before = upstreamTraffic(stack);
    const refreshed = await refresh(base, clientId, tokens.refresh_token!);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(refreshed.body.access_token).not.toBe(tokens.access_token);
    expect(refreshed.body.refresh_token).not.toBe(tokens.refresh_token);
    expect(upstreamTraffic(stack)).toEqual(before);

    expect(await status(stack.urls.internal, `Bearer ${refreshed.body.access_token}`)).toBe(200);
    expect(stack.internal.requests.at(-1)!.headers["x-api-key"]).toBe(stack.apiKey);
  });

  it("revokes without telling any upstream, and the token is refused from then on", async () => {
    const base = stack.gateway.publicUrl;
    const { clientId, tokens } = await grant(base, stack.urls.internal);
    expect(await status(stack.urls.internal, `Bearer ${tokens.access_token}`)).toBe(200);

    const before = upstreamTraffic(stack);
    const revoked = await fetch(`${base}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: tokens.refresh_token!, client_id: clientId }).toString(),
    });
    expect(revoked.status).toBe(200);
    await revoked.body?.cancel();
    expect(upstreamTraffic(stack)).toEqual(before);

    expect(await status(stack.urls.internal, `Bearer ${tokens.access_token}`)).toBe(401);
    expect((await refresh(base, clientId, tokens.refresh_token!)).body.error).toBe("invalid_grant");
    expect(upstreamTraffic(stack)).toEqual(before);
  });

  it("challenges at /mcp/<name> with that upstream's metadata and scopes only", async () => {
    const base = stack.gateway.publicUrl;
    const expected = { github: "repo read:org", oidc: "mcp:tools", internal: undefined };
    const challengeOf = async (name: string) => {
      const response = await mcpInitialize(`${base}/mcp/${name}`);
      await response.body?.cancel();
      expect(response.status, name).toBe(401);
      return response.headers.get("www-authenticate") ?? "";
    };
    for (const [name, scope] of Object.entries(expected)) {
      // The challenge never waits for the upstream: an upstream's own scopes (oidc's) appear once its
      // discovery, started by the first request, has finished
      let challenge = await challengeOf(name);
      for (let tries = 0; scope && !challenge.includes("scope=") && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        challenge = await challengeOf(name);
      }
      // RFC 9728 §5.1: the metadata of this resource, and no other
      expect(challenge, name).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp/${name}"`);
      expect(challenge.match(/resource_metadata=/g), name).toHaveLength(1);
      expect(/scope="([^"]*)"/.exec(challenge)?.[1], name).toBe(scope);
    }
  });

  it("has no /mcp/nope", async () => {
    const base = stack.gateway.publicUrl;
    expect(await status(`${base}/mcp/nope`)).toBe(404);
    const { tokens } = await grant(base, stack.urls.internal);
    expect(await status(`${base}/mcp/nope`, `Bearer ${tokens.access_token}`)).toBe(404);
    expect((await fetch(`${base}/.well-known/oauth-protected-resource/mcp/nope`)).status).toBe(404);
  });
});

describe("a grant whose upstream was removed from the config", () => {
  const secret = randomBytes(32).toString("base64url");
  const apiKey = randomBytes(24).toString("base64url");
  let dataDir: string;
  let configDir: string;
  let internal: McpUpstream;
  let open: McpUpstream;
  let gateway: Gateway | undefined;
  let port: number;

  const start = (file: string, servers: Record<string, ServerEntry>) =>
    configuredGateway(join(configDir, file), servers, { port, dataDir, secret, env: { INTERNAL_API_KEY: apiKey } });

  beforeAll(async () => {
    dataDir = tempDir("gateway-removed-data");
    configDir = tempDir("gateway-removed-config");
    internal = await startMcpUpstream(whoamiServer, { requireHeader: { name: "x-api-key", value: apiKey } });
    open = await startMcpUpstream(whoamiServer);
    port = await freePort();
  });
  afterAll(async () => {
    await gateway?.close();
    await internal?.close();
    await open?.close();
    for (const dir of [dataDir, configDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses to refresh it (invalid_grant), while grants of upstreams still served go on", async () => {
    const both = {
      internal: { url: internal.url, auth: { header: "X-API-Key", value: "${INTERNAL_API_KEY}" } },
      open: { url: open.url, auth: "none" as const },
    };
    gateway = await start("before.json", both);
    const base = gateway.publicUrl;
    const removed = await grant(base, `${base}/mcp/internal`);
    const kept = await grant(base, `${base}/mcp/open`);
    expect(await status(`${base}/mcp/internal`, `Bearer ${removed.tokens.access_token}`)).toBe(200);
    await gateway.close();

    const { internal: _, ...withoutInternal } = both;
    gateway = await start("after.json", withoutInternal);
    expect(gateway.publicUrl).toBe(base);
    const before = internal.requests.length;

    const refused = await refresh(base, removed.clientId, removed.tokens.refresh_token!);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");
    expect(refused.body.error_description).toContain(`no longer serves ${base}/mcp/internal`);
    expect(await status(`${base}/mcp/internal`, `Bearer ${removed.tokens.access_token}`)).toBe(404);
    expect(internal.requests.length).toBe(before);

    // same store, same secret, same URL: the other grant survived the restart
    const renewed = await refresh(base, kept.clientId, kept.tokens.refresh_token!);
    expect(renewed.status, JSON.stringify(renewed.body)).toBe(200);
    expect(await status(`${base}/mcp/open`, `Bearer ${renewed.body.access_token}`)).toBe(200);
    await gateway.close();

    // the same name now leads to an upstream that refuses anonymous requests: detected as OAuth, so a grant made without an upstream sign-in ends
    gateway = await start("detected.json", { open: { url: internal.url } });
    expect(await gateway.mounts.all[0]!.mode()).toBe("oauth");
    const switched = await refresh(base, kept.clientId, renewed.body.refresh_token!);
    expect(switched.status).toBe(400);
    expect(switched.body).toMatchObject({ error: "invalid_grant", error_description: "The upstream now wants another kind of sign-in: authorize again." });
  }, 60_000);
});
