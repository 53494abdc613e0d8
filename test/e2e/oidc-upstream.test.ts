import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import type { Gateway } from "../../src/gateway.js";
import { connectWithOAuth } from "../support/connect.js";
import { mcpInitialize } from "../support/oauth-steps.js";
import { ACCOUNT_ID, MCP_SCOPE, startOidcUpstream, type OidcUpstream } from "../support/oidc-upstream.js";
import type { ServerEntry } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

/**
 * The whole chain against an independent, certified OAuth server (oidc-provider) and an MCP SDK
 * server with sessions: nothing about the upstream is configured but its MCP URL.
 */
describe("end to end through the gateway (oidc-provider upstream)", () => {
  let upstream: OidcUpstream | undefined;
  let gateway: Gateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    await upstream?.close();
    if (upstream) expect(upstream.providerErrors).toEqual([]);
    gateway = upstream = undefined;
  });

  /** The upstream, then a gateway at `/mcp` given only its URL and whatever `oauth` `extra` adds. */
  async function start(extra: (u: OidcUpstream) => NonNullable<ServerEntry["oauth"]> = () => ({})) {
    upstream = await startOidcUpstream({ accessTokenTtl: 300 });
    const clock = new ManualClock();
    gateway = await startTestGateway({ mcpServers: { oidc: { url: upstream.mcpUrl, oauth: extra(upstream) } }, atMcp: true, clock });
    return { upstream, gateway, clock, mcpUrl: `${gateway.publicUrl}/mcp` };
  }

  const whoami = async (client: Client) => {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    expect(result.isError).toBeFalsy();
    return JSON.parse((result.content as { text: string }[])[0]!.text) as { sub: string; client_id: string; scope: string; session_id: string };
  };
  const authorized = (u: OidcUpstream) => u.mcpRequests.filter((r) => r.authorization);

  it("discovers the upstream, registers at it once, and keeps the upstream session", async () => {
    const { upstream, mcpUrl } = await start();
    const { client, redirect, transport } = await connectWithOAuth(mcpUrl);
    expect(redirect.searchParams.get("iss")).toBe(gateway!.publicUrl);

    // RFC 9728 from the upstream's 401, then RFC 8414 at the issuer it names, then RFC 7591.
    expect(upstream.mcpRequests.slice(0, 2)).toEqual([
      { method: "POST", path: "/mcp", rpcMethod: "ping" },
      { method: "GET", path: "/.well-known/oauth-protected-resource/mcp" },
    ]);
    // Discovery at start (the first challenge), then again as the sign-in starts, then one registration.
    expect(upstream.providerRequests.slice(0, 3).map((r) => `${r.method} ${r.path}`)).toEqual([
      "GET /.well-known/oauth-authorization-server",
      "GET /.well-known/oauth-authorization-server",
      "POST /reg",
    ]);
    expect(upstream.registrations).toHaveLength(1);
    const registered = upstream.registrations[0]!;
    const registration = upstream.providerRequests.find((r) => r.path === "/reg")!;
    expect(registration.body).toMatchObject({
      redirect_uris: [`${gateway!.publicUrl}/upstream/callback`],
      token_endpoint_auth_method: "client_secret_basic",
      application_type: "web",
    });
    // The provider ran its own login and consent; the gateway asked with PKCE S256 and RFC 8707.
    expect(upstream.interactions).toEqual(["login", "consent"]);
    const authorize = upstream.providerRequests.find((r) => r.path === "/auth")!;
    // SEP-2207: offline_access too, since the provider lists it
    expect(authorize.query).toMatchObject({
      client_id: registered,
      code_challenge_method: "S256",
      resource: upstream.mcpUrl,
      scope: `${MCP_SCOPE} offline_access`,
    });
    expect(upstream.grants).toEqual([{ grantType: "authorization_code", clientId: registered }]);

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(["whoami"]);
    const me = await whoami(client);
    expect(me).toMatchObject({ sub: ACCOUNT_ID, client_id: registered, scope: MCP_SCOPE });

    // Mcp-Session-Id round-trips: one session, every call after initialize carries it, GET stream included.
    expect(upstream.sessions.opened).toEqual([me.session_id]);
    expect(transport.sessionId).toBe(me.session_id);
    const calls = authorized(upstream);
    expect(calls[0]).toMatchObject({ method: "POST", rpcMethod: "initialize" });
    expect(calls[0]!.sessionId).toBeUndefined();
    for (const call of calls.slice(1)) expect(call.sessionId).toBe(me.session_id);
    expect(calls.map((c) => c.method)).toContain("GET");
    await transport.terminateSession(); // DELETE through the gateway ends the upstream session
    expect(upstream.sessions.closed).toEqual([me.session_id]);
    await client.close();

    // A second user's flow reuses the gateway's registration at the provider.
    const second = await connectWithOAuth(mcpUrl);
    expect((await whoami(second.client)).client_id).toBe(registered);
    expect(upstream.providerRequests.filter((r) => r.path === "/reg")).toHaveLength(1);
    expect(upstream.registrations).toEqual([registered]);
    expect(upstream.interactions).toEqual(["login", "consent", "login", "consent"]);
    expect(upstream.sessions.opened).toHaveLength(2);
    await second.client.close();
  });

  it("refreshes through the gateway into rotated upstream refreshes, and forwards only upstream tokens", async () => {
    const { upstream, clock, mcpUrl } = await start();
    const { client, provider } = await connectWithOAuth(mcpUrl);
    const before = await whoami(client);
    expect(provider.tokenHistory[0]!.expires_in).toBeLessThanOrEqual(300); // capped by the upstream token's lifetime

    // The gateway's clock only: its token and its view of the upstream token expire, twice.
    for (let round = 1; round <= 2; round++) {
      clock.advance(10 * 60_000);
      expect(await whoami(client)).toMatchObject({ sub: ACCOUNT_ID, session_id: before.session_id });
    }
    expect(provider.tokenHistory).toHaveLength(3);
    expect(upstream.grants.map((g) => g.grantType)).toEqual(["authorization_code", "refresh_token", "refresh_token"]);

    // Each upstream refresh presented the refresh token the provider rotated in last (reuse would revoke the grant).
    const answers = upstream.providerRequests.filter((r) => r.path === "/token");
    for (const [i, call] of answers.entries()) {
      expect(call.response).toMatchObject({ token_type: "Bearer", scope: MCP_SCOPE });
      expect(call.response!.refresh_token).toBeTypeOf("string");
      if (i > 0)
        expect(call.body).toMatchObject({ grant_type: "refresh_token", refresh_token: answers[i - 1]!.response!.refresh_token, resource: upstream.mcpUrl });
    }
    expect(new Set(answers.map((a) => a.response!.refresh_token)).size).toBe(3);

    // No token passthrough: the MCP server saw exactly the provider's access tokens, never a gateway token.
    const issued = answers.map((a) => `Bearer ${String(a.response!.access_token)}`);
    expect([...new Set(authorized(upstream).map((r) => r.authorization))]).toEqual(issued);
    for (const r of authorized(upstream))
      expect(r.token).toMatchObject({ active: true, aud: upstream.mcpUrl, sub: ACCOUNT_ID, client_id: upstream.registrations[0] });
    const gatewayPieces = provider.tokenHistory.flatMap((t) => [t.access_token, t.refresh_token!]).flatMap((t) => t.split("~"));
    expect(gatewayPieces).toHaveLength(12);
    const seen = JSON.stringify([upstream.mcpRequests, upstream.providerRequests]);
    for (const piece of gatewayPieces) expect(seen).not.toContain(piece);
    // ...which it would have refused: it checks every token with the provider.
    const passedThrough = await mcpInitialize(upstream.mcpUrl, `Bearer ${provider.tokenHistory[2]!.access_token}`);
    expect(passedThrough.status).toBe(401);
    expect(passedThrough.headers.get("www-authenticate")).toContain('error="invalid_token"');
    await client.close();
  });

  // A withdrawn grant must end in invalid_grant, so the client authorizes again, whether the gateway
  // notices at its own refresh after expiry, or first hears it as an upstream 401 on a live token:
  // then the gateway refreshes upstream at once instead of handing out the refused token again.
  it.each([
    ["after the gateway token expired", true],
    ["while the gateway token still looked valid", false],
  ])("turns a withdrawn upstream grant into invalid_grant and a new sign-in for the client, %s", async (_when, expire) => {
    const { upstream, clock, mcpUrl } = await start();
    const { client, provider } = await connectWithOAuth(mcpUrl);
    await whoami(client);
    const firstAuthorization = provider.authorizationUrl!.href;
    await upstream.revokeGrants();
    if (expire) clock.advance(10 * 60_000);

    const refused = await client.callTool({ name: "whoami", arguments: {} }).then(
      () => undefined,
      (error: unknown) => error,
    );
    // the SDK drops the refused tokens and sends the user to sign in again (test/e2e/upstream-grant-gone.test.ts)
    expect(refused).toBeInstanceOf(UnauthorizedError);
    expect(provider.authorizationUrl!.href).not.toBe(firstAuthorization);
    expect(provider.tokenHistory).toHaveLength(1);
    const refreshes = upstream.providerRequests.filter((r) => r.path === "/token" && r.body?.grant_type === "refresh_token");
    expect(refreshes).toHaveLength(1); // the SDK's retry was refused by the gateway alone
    expect(refreshes[0]!.response).toMatchObject({ error: "invalid_grant" });
    expect(upstream.providerErrors.splice(0)).toEqual(["grant.error: invalid_grant"]);
    await client.close();
  });

  it("skips discovery and registration with explicit endpoints and a pre-registered client", async () => {
    const { upstream, mcpUrl } = await start(({ preRegistered: p }) => ({
      clientId: p.client_id,
      clientSecret: p.client_secret,
      authorizationEndpoint: p.authorizationEndpoint,
      tokenEndpoint: p.tokenEndpoint,
      scope: MCP_SCOPE,
      // without metadata the default is Basic (RFC 8414 §2); this client is registered for the form
      tokenEndpointAuthMethod: "client_secret_post",
    }));
    const { client } = await connectWithOAuth(mcpUrl);
    expect(await whoami(client)).toMatchObject({ sub: ACCOUNT_ID, client_id: upstream.preRegistered.client_id, scope: MCP_SCOPE });

    // Nothing was discovered or registered: no metadata fetched anywhere, no unauthenticated probe.
    expect(upstream.providerRequests.map((r) => r.path).filter((p) => p.startsWith("/.well-known") || p === "/reg")).toEqual([]);
    expect(upstream.registrations).toEqual([]);
    expect(upstream.mcpRequests.filter((r) => !r.authorization)).toEqual([]);
    expect(upstream.grants).toEqual([{ grantType: "authorization_code", clientId: upstream.preRegistered.client_id }]);
    // The pre-registered client authenticated at the token endpoint with its secret, as pinned (client_secret_post).
    const exchange = upstream.providerRequests.find((r) => r.path === "/token")!;
    expect(exchange.body).toMatchObject({
      client_id: upstream.preRegistered.client_id,
      client_secret: upstream.preRegistered.client_secret,
      resource: upstream.mcpUrl,
    });
    await client.close();
  });
});
