import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetch } from "undici";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { TestBrowser, returnLink } from "../support/browser.js";
import { connectWithOAuth } from "../support/connect.js";
import { authorizationRequest, clientAuthorizeUrl, mcpInitialize, obtainCode, register, tokenRequest, REDIRECT_URI } from "../support/oauth-steps.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { ACCOUNT_ID } from "../support/oidc-upstream.js";
import { expectRefusal } from "../support/refusal.js";
import { LOGIN } from "../support/config.js";

type Name = "github" | "oidc" | "internal";
const NAMES: Name[] = ["github", "oidc", "internal"];

const text = async (client: Client, name: string): Promise<string> => {
  const result = await client.callTool({ name, arguments: {} });
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  return (result.content as { type: string; text: string }[])[0]!.text;
};

/**
 * Issue 6 acceptance: three upstreams behind one gateway, each its own protected resource, used by
 * the real MCP SDK client: the GitHub simulator with a pre-registered client, an OpenID Provider
 * found by the gateway itself (no `oauth` block: 401, metadata, dynamic registration), and an
 * API-key server the gateway calls with a static header.
 */
describe("several upstreams behind one gateway", () => {
  let stack: MultiStack;
  const clients = {} as Record<Name, Awaited<ReturnType<typeof connectWithOAuth>>>;
  const tokens = {} as Record<Name, string>;

  beforeAll(async () => {
    stack = await startMultiStack({ oidc: { identityHeaders: true } });
    for (const name of NAMES) {
      clients[name] = await connectWithOAuth(stack.urls[name]);
      tokens[name] = clients[name].provider.tokens()!.access_token;
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of Object.values(clients)) await c.client.close();
    await stack?.close();
  });

  it("the SDK client uses all three, each through its own upstream auth", async () => {
    expect(JSON.parse(await text(clients.github.client, "get_me"))).toMatchObject({ login: "octocat" });
    expect(JSON.parse(await text(clients.oidc.client, "whoami"))).toMatchObject({ sub: ACCOUNT_ID });
    // the API-key server sees the gateway user through the identity headers it opted into
    expect(await text(clients.internal.client, "whoami")).toBe(LOGIN.username);

    // each upstream saw its own credential, never a gateway token
    const internal = stack.internal.requests.filter((r) => r.method === "POST");
    expect(internal.length).toBeGreaterThan(0);
    for (const r of internal) {
      expect(r.headers["x-api-key"]).toBe(stack.apiKey);
      expect(r.authorization).toBeUndefined();
    }
    const oidcBearers = stack.oidc.mcpRequests.filter((r) => r.token?.active).map((r) => r.authorization);
    expect(oidcBearers.length).toBeGreaterThan(0);
    for (const bearer of oidcBearers) expect(Object.values(tokens).some((t) => bearer?.includes(t.split("~")[0]!))).toBe(false);
    // the gateway found the OpenID Provider itself and registered there once
    expect(stack.oidc.registrations).toHaveLength(1);
  });

  it("gives each token its own audience, and every other upstream refuses it", async () => {
    for (const holder of NAMES)
      for (const target of NAMES) {
        const response = await mcpInitialize(stack.urls[target], `Bearer ${tokens[holder]}`);
        if (holder === target) {
          expect(response.status, `${holder} at ${target}`).toBe(200);
          await response.body?.cancel();
          continue;
        }
        expect(response.status, `${holder}'s token at ${target}`).toBe(401);
        const challenge = response.headers.get("www-authenticate") ?? "";
        expect(challenge).toContain('error="invalid_token"');
        expect(challenge).toContain(`resource_metadata="${stack.gateway.publicUrl}/.well-known/oauth-protected-resource/mcp/${target}"`);
        await response.body?.cancel();
      }
  });

  it("publishes one RFC 9728 document per upstream, each naming an issuer of its own that RFC 8414 and OIDC discovery find", async () => {
    const gw = stack.gateway.publicUrl;
    for (const name of NAMES) {
      const response = await fetch(`${gw}/.well-known/oauth-protected-resource/mcp/${name}`);
      expect(response.status).toBe(200);
      const metadata = (await response.json()) as { resource: string; authorization_servers: string[] };
      expect(metadata.resource).toBe(stack.urls[name]);
      expect(metadata.authorization_servers).toEqual([`${gw}/mcp/${name}`]);
      for (const path of [
        `/.well-known/oauth-authorization-server/mcp/${name}`,
        `/.well-known/openid-configuration/mcp/${name}`,
        `/mcp/${name}/.well-known/openid-configuration`,
      ]) {
        const as = (await (await fetch(`${gw}${path}`)).json()) as Record<string, string>;
        // RFC 8414 §3.3: the issuer is the one the metadata URL was formed from
        expect(as, path).toMatchObject({ issuer: `${gw}/mcp/${name}`, authorization_endpoint: `${gw}/authorize/${name}`, token_endpoint: `${gw}/token` });
      }
    }
    for (const path of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"])
      expect((await fetch(`${stack.gateway.publicUrl}${path}`)).status, path).toBe(404);
    const bare = await mcpInitialize(`${stack.gateway.publicUrl}/mcp`, `Bearer ${tokens.github}`);
    expect(bare.status).toBe(404);
    await bare.body?.cancel();
  });

  it("knows the upstream from its own authorization endpoint when the client names no resource (Claude Code 2.1.251)", async () => {
    const gw = stack.gateway.publicUrl;
    const { client_id } = await register(gw);
    const browser = new TestBrowser();
    const own = await browser.request(clientAuthorizeUrl(gw, client_id, {}).replace("/authorize?", "/authorize/github?"));
    expect(own.status).toBe(302);
    const page = (await browser.request(own.location!)).text;
    expect(page).toContain(`<code>${stack.urls.github}</code>`);
    // another upstream's resource at this issuer's endpoint is refused, and the answer names this issuer (RFC 9207);
    // to a client not approved before, through the page's link (RFC 9700 §4.11.2)
    const other = await browser.request(clientAuthorizeUrl(gw, client_id, { resource: stack.urls.oidc }).replace("/authorize?", "/authorize/github?"));
    expect(other.status).toBe(400);
    const location = returnLink(other.text)!.url;
    expect(location.searchParams.get("error")).toBe("invalid_target");
    expect(location.searchParams.get("iss")).toBe(`${gw}/mcp/github`);
  });

  it("needs the resource named at the shared authorization endpoint, and refuses an unknown one, with invalid_target", async () => {
    const { client_id } = await register(stack.gateway.publicUrl);
    for (const resource of [undefined, `${stack.gateway.publicUrl}/mcp`, `${stack.gateway.publicUrl}/mcp/nope`]) {
      const url = clientAuthorizeUrl(stack.gateway.publicUrl, client_id, resource ? { resource } : {});
      const response = await new TestBrowser().request(url);
      expect(response.status).toBe(400);
      const location = returnLink(response.text)!.url;
      expect(location.searchParams.get("error"), String(resource)).toBe("invalid_target");
    }
  });

  it("names the upstream on the login screen", async () => {
    const { client_id } = await register(stack.gateway.publicUrl);
    const browser = new TestBrowser();
    const start = await browser.request(clientAuthorizeUrl(stack.gateway.publicUrl, client_id, { resource: stack.urls.internal }));
    const page = (await browser.request(start.location!)).text;
    expect(page).toContain("to use internal?");
    expect(page).toContain(`<code>${stack.urls.internal}</code>`);
  });

  it("remembers an approval for the upstream approved only", async () => {
    const { client_id } = await register(stack.gateway.publicUrl);
    const browser = new TestBrowser({ "sec-fetch-site": "none" });
    const url = (name: Name) => clientAuthorizeUrl(stack.gateway.publicUrl, client_id, { resource: stack.urls[name] });
    const first = await browser.authorize(url("internal"), { redirectUri: REDIRECT_URI, ...LOGIN, remember: true });
    expect(first.searchParams.get("code")).toBeTruthy();
    const screen1 = async (name: Name) => {
      const start = await browser.request(url(name));
      const next = await browser.request(start.location!);
      return next.status === 200 && next.text.includes('name="decision"');
    };
    expect(await screen1("internal")).toBe(false);
    expect(await screen1("github")).toBe(true);
  });

  it("sends each upstream's sign-in out with its own callback, and refuses an answer that comes back at another's (mix-up)", async () => {
    const base = stack.gateway.publicUrl;
    const { client_id } = await register(base);
    const tokenCalls = () => ({
      oidc: stack.oidc.grants.length,
      github: stack.simulator.requests.filter((r) => r.path.startsWith("/login/oauth/access_token")).length,
    });
    const before = tokenCalls();
    // a sign-in goes out to `upstream`'s authorization server, and an answer with its state comes back at `arrivesAt`
    const crossed = async (upstream: Name, authorizationEndpoint: string, arrivesAt: string) => {
      const { url, state } = authorizationRequest(base, client_id, { resource: stack.urls[upstream] });
      const browser = new TestBrowser();
      const out = await browser.authorize(url, { redirectUri: authorizationEndpoint, ...LOGIN });
      expect(out.searchParams.get("redirect_uri")).toBe(`${base}/upstream/callback/${upstream}`);
      const answer = await browser.request(`${base}${arrivesAt}?code=from-elsewhere&state=${out.searchParams.get("state")}`);
      const page = expectRefusal({ url: arrivesAt, ...answer }, browser, { state, issuer: base });
      expect(page).toContain("another upstream&#39;s callback");
    };
    await crossed("oidc", `${stack.oidc.issuer}/auth?`, "/upstream/callback/github");
    await crossed("github", `${stack.simulator.webOrigin}/login/oauth/authorize?`, "/upstream/callback");
    // the code was sent to no token endpoint at all
    expect(tokenCalls()).toEqual(before);
  });

  it("shows the gateway user and the upstream identity at /introspect", async () => {
    const { client_id, client_secret } = await register(stack.gateway.publicUrl, { token_endpoint_auth_method: "client_secret_post" });
    const answer = async (token: string) => {
      const response = await fetch(`${stack.gateway.publicUrl}/introspect`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token, client_id, client_secret: client_secret! }).toString(),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    // another client's token is not this client's business (RFC 7662 §2.2)
    expect(await answer(tokens.github)).toEqual({ active: false });

    const own = async (name: Name) => {
      const { code, verifier, redirect } = await obtainCode(stack.gateway.publicUrl, { clientId: client_id, resource: stack.urls[name] });
      expect(code, redirect.href).toBeTruthy();
      const form = { grant_type: "authorization_code", code, code_verifier: verifier, client_id, client_secret: client_secret!, redirect_uri: REDIRECT_URI };
      const { status, body } = await tokenRequest(stack.gateway.publicUrl, form);
      expect(status, JSON.stringify(body)).toBe(200);
      return body;
    };
    const github = await own("github");
    for (const token of [github.access_token!, github.refresh_token!])
      expect(await answer(token)).toMatchObject({
        active: true,
        aud: stack.urls.github,
        sub: LOGIN.username,
        username: LOGIN.username,
        upstream_identity: { login: "octocat", sub: "583231", preferred_username: "octocat", email: "octocat@users.noreply.github.com" },
      });
    const oidc = await answer((await own("oidc")).access_token!);
    expect(oidc).toMatchObject({ active: true, aud: stack.urls.oidc, username: LOGIN.username, upstream_identity: { sub: ACCOUNT_ID } });
    // static credentials: the gateway user is all there is
    const internal = await answer((await own("internal")).access_token!);
    expect(internal).toMatchObject({ active: true, aud: stack.urls.internal, username: LOGIN.username });
    expect(internal.upstream_identity).toBeUndefined();
  });
});
