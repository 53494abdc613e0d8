import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { connectWithOAuth } from "../support/connect.js";
import { TestBrowser } from "../support/browser.js";
import { authorizationRequest, mcpInitialize, register, REDIRECT_URI } from "../support/oauth-steps.js";
import { freePort } from "../support/processes.js";
import { expectRefusal } from "../support/refusal.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { LOGIN } from "../support/config.js";

const FORGED = {
  "X-Forwarded-User": "mallory",
  "X-Forwarded-Email": "mallory@evil.example",
  "X-Forwarded-Preferred-Username": "mallory",
  "X-Forwarded-Groups": "admins",
  // what CGI-style servers read as X-Forwarded-User, and other proxies' identity headers
  X_Forwarded_User: "mallory",
  "X-Forwarded_Email": "mallory@evil.example",
  "X-Auth-Request-User": "mallory",
  "Remote-User": "mallory",
};

/** Issue 16 item 13: what other proxies and sign-in front ends say the user is, and shadows of what the gateway sets. */
const CLAIMED = {
  "Remote-Groups": "admins",
  "Remote-Email": "mallory@evil.example",
  "Remote-Name": "Mallory",
  "X-Remote-Groups": "admins",
  "X-WEBAUTH-USER": "admin",
  "X-User": "admin",
  "X-Email": "admin@example.com",
  "X-Authenticated-User": "admin",
  "True-Client-IP": "10.0.0.1",
  "CF-Connecting-IP": "10.0.0.1",
  "X-Real-IP": "10.0.0.1",
  Forwarded: "for=10.0.0.1",
  "X-Forwarded-For": "10.0.0.1",
  "X-Forwarded-Groups": "admins",
  Remote_User: "admin",
  X_WEBAUTH_USER: "admin",
  X_Authenticated_Email: "admin@example.com",
  // API gateways', Envoy's and sign-in modules' names for the user, its tokens and its address
  "X-Userinfo": "eyJzdWIiOiJhZG1pbiJ9",
  "X-JWT-Assertion": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
  "X-Consumer-Username": "admin",
  "X-Consumer-ID": "admin-id",
  "X-Consumer-Custom-ID": "admin-custom-id",
  "X-Credential-Username": "admin",
  "X-Credential-Identifier": "admin-credential",
  "X-Auth-User": "admin",
  "X-Id-Token": "a forged id token",
  "X-Access-Token": "a forged access token",
  "X-Principal": "admin",
  "Client-IP": "10.0.0.2",
  "X-Originating-IP": "10.0.0.3",
  "X-ProxyUser-IP": "10.0.0.4",
  "x-envoy-external-address": "10.0.0.5",
  "x-envoy-original-path": "/admin/original",
  "x-envoy-peer-metadata": "forged peer metadata",
  OIDC_CLAIM_email: "oidc-admin@example.com",
  "OIDC-CLAIM-sub": "oidc-admin",
  "X-MS-TOKEN-AAD-ID-TOKEN": "a forged aad id token",
  X_MS_TOKEN_AAD_ACCESS_TOKEN: "a forged aad access token",
  // another method or path than the one the gateway relays, as IIS, Spring and Rails take them
  "X-Original-URL": "/admin/url",
  "X-Rewrite-URL": "/admin/rewrite",
  "X-HTTP-Method-Override": "DELETE",
  "X-HTTP-Method": "PUT",
  X_Method_Override: "PATCH",
  // the operator's `headers`, spelt as CGI-style servers read them too
  x_mcp_readonly: "false",
  "X-MCP_Readonly": "false",
};
/** `internal`'s `auth.header` (X-API-Key), spelt likewise. */
const SHADOWED_KEY = { X_API_Key: "a key of mallory's", "X_API-KEY": "a key of mallory's" };

const IDENTITY = /^(x-forwarded-|x-auth-request-|remote-user$)/;
const forwarded = (headers: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => IDENTITY.test(name.replaceAll("_", "-"))));

/**
 * Issue 6, identity headers: opted in by `internal` (static API key: the gateway user) and `github`
 * (GitHub's login and verified email), not by `plain`. Clients send forged ones everywhere.
 */
describe("identity headers", () => {
  let stack: MultiStack;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    const readonly = { headers: { "X-MCP-Readonly": "true" } };
    stack = await startMultiStack({ plain: readonly, internal: readonly, github: { identityHeaders: true } });
    for (const name of ["github", "internal", "plain"] as const) {
      const connected = await connectWithOAuth(stack.urls[name]!);
      tokens[name] = connected.provider.tokens()!.access_token;
      await connected.client.close();
    }
  }, 60_000);
  afterAll(() => stack?.close());

  it("reach an upstream that opted in as the gateway says, never as the client says", async () => {
    const before = stack.internal.requests.length;
    const response = await mcpInitialize(stack.urls.internal, `Bearer ${tokens.internal}`, FORGED);
    expect(response.status).toBe(200);
    await response.body?.cancel();
    const seen = stack.internal.requests.slice(before);
    expect(seen).toHaveLength(1);
    // a static credential has no upstream sign-in: the gateway user is who there is
    expect(forwarded(seen[0]!.headers)).toEqual({ "x-forwarded-user": LOGIN.username, "x-forwarded-preferred-username": LOGIN.username });
  });

  it("carry the GitHub login and verified email to a GitHub upstream that opted in", async () => {
    const before = stack.simulator.requests.length;
    const response = await mcpInitialize(stack.urls.github, `Bearer ${tokens.github}`, FORGED);
    expect(response.status).toBe(200);
    await response.body?.cancel();
    const seen = stack.simulator.requests.slice(before).filter((r) => r.origin === "mcp");
    expect(seen).toHaveLength(1);
    expect(forwarded(seen[0]!.headers)).toEqual({
      "x-forwarded-user": "octocat",
      "x-forwarded-email": "octocat@users.noreply.github.com",
      "x-forwarded-preferred-username": "octocat",
    });
  });

  it("never reach an upstream that did not opt in, even when the client sends them", async () => {
    const before = stack.plain!.requests.length;
    const response = await mcpInitialize(stack.urls.plain!, `Bearer ${tokens.plain}`, FORGED);
    expect(response.status).toBe(200);
    await response.body?.cancel();
    const seen = stack.plain!.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(forwarded(seen[0]!.headers)).toEqual({});
    expect(stack.plain!.requests.every((r) => Object.keys(forwarded(r.headers)).length === 0)).toBe(true);
  });

  it("MU10 no client header claiming identity or shadowing the gateway's own reaches an upstream, with identity headers on or off", async () => {
    // what the gateway itself says to `internal`: a static credential has no upstream sign-in, so the gateway user
    const identityHeaders = { "x-forwarded-user": LOGIN.username, "x-forwarded-preferred-username": LOGIN.username };
    for (const name of ["internal", "plain"] as const) {
      const upstream = stack[name]!;
      const before = upstream.requests.length;
      const sent = { ...FORGED, ...CLAIMED, ...(name === "internal" ? SHADOWED_KEY : {}) };
      const response = await mcpInitialize(stack.urls[name]!, `Bearer ${tokens[name]}`, { ...sent, "X-MCP-Readonly": "false" });
      expect(response.status).toBe(200);
      await response.body?.cancel();
      const seen = upstream.requests.slice(before);
      expect(seen).toHaveLength(1);
      const headers = seen[0]!.headers;
      for (const header of Object.keys(sent).map((n) => n.toLowerCase()))
        if (!Object.hasOwn(identityHeaders, header)) expect(headers, `${name}: ${header}`).not.toHaveProperty(header);
      expect(headers["x-mcp-readonly"]).toBe("true");
      if (name === "internal") expect(headers["x-api-key"]).toBe(stack.apiKey);
      // nothing of what the client claimed under any name, but the gateway's identity headers where they are on
      const claimedValues = new Set(Object.values(sent));
      expect(Object.entries(headers).filter(([, value]) => claimedValues.has(String(value)))).toEqual([]);
      expect(forwarded(headers)).toEqual(name === "internal" ? identityHeaders : {});
    }
  });

  it("are what the MCP server's tool sees through the real SDK client", async () => {
    const client = new Client({ name: "forger", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(stack.urls.internal), {
      requestInit: { headers: { authorization: `Bearer ${tokens.internal}`, ...FORGED } },
    });
    await client.connect(transport);
    const result = await client.callTool({ name: "whoami", arguments: {} });
    expect((result.content as { text: string }[])[0]!.text).toBe(LOGIN.username);
    await client.close();
  });
});

describe("identity headers of an upstream whose account cannot be looked up", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    // GitHub's REST API, where the gateway asks who the user is, is down (nothing listens there)
    stack = await startMultiStack({ github: { identityHeaders: true, oauth: { apiUrl: `http://127.0.0.1:${await freePort()}` } } });
  }, 60_000);
  afterAll(() => stack?.close());

  it("end the sign-in with temporarily_unavailable rather than make a grant that would never carry them", async () => {
    const base = stack.gateway.publicUrl;
    const { client_id } = await register(base);
    const { url, state } = authorizationRequest(base, client_id, { resource: stack.urls.github });
    const browser = new TestBrowser();
    const end = await browser.walk(url, { redirectUri: REDIRECT_URI, ...LOGIN });
    const page = expectRefusal(end, browser, { state, issuer: base, error: "temporarily_unavailable" });
    expect(page).toContain("could not ask github who you are");
  });
});
