import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWithOAuth } from "../support/connect.js";
import {
  PLAIN_USER,
  startGatewayInFront,
  startPlainAs,
  type GatewayInFront,
  type PlainAs,
  type PlainAsQuirks,
  type RecordedRequest,
} from "../support/plain-as.js";
import { expectRefusal } from "../support/refusal.js";

/** Sign in through the gateway with the MCP SDK client and call `whoami` upstream: the user the upstream saw. */
async function whoami(mcpUrl: string): Promise<string> {
  const { client } = await connectWithOAuth(mcpUrl);
  try {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await client.close();
  }
}

/** The `Authorization: Basic` credentials as sent: base64 decoded, the form-urlencoding left as it is on the wire. */
function basicAsSent(r: RecordedRequest): string | undefined {
  const encoded = /^Basic (.+)$/.exec(r.headers.authorization ?? "")?.[1];
  return encoded && Buffer.from(encoded, "base64").toString("utf8");
}

const form = (r: RecordedRequest) => new URLSearchParams(r.body);

/** The one client the upstream has registered dynamically, and its registration request. */
function onlyRegistration(up: PlainAs): { client_id: string; client_secret?: string; asked: Record<string, unknown> } {
  const requests = up.to(new URL(up.endpoints.register).pathname);
  expect(requests).toHaveLength(1);
  expect(up.clients.size).toBe(1);
  const [client] = [...up.clients.values()];
  return { ...client!, asked: JSON.parse(requests[0]!.body) as Record<string, unknown> };
}

/** Every token request, at least one: the sign-in's code redeemed. */
function tokenRequests(up: PlainAs): RecordedRequest[] {
  const requests = up.to(new URL(up.endpoints.token).pathname);
  expect(requests.length).toBeGreaterThan(0);
  expect(form(requests[0]!).get("grant_type")).toBe("authorization_code");
  return requests;
}

/**
 * The upstream kinds the gateway meets as an OAuth client (src/upstream/*), one upstream of each
 * behind one gateway: each test signs in with the MCP SDK client, calls a tool, and checks what the
 * upstream saw. The upstreams are strict: a request authenticated the wrong way is refused, so a
 * passing tool call already shows the gateway chose right.
 */
describe("one gateway in front of each kind of upstream", () => {
  const apiKey = randomBytes(18).toString("base64url");
  const staticToken = randomBytes(18).toString("base64url");
  const preRegisteredSecret = randomBytes(24).toString("base64url");
  const up: Record<string, PlainAs> = {};
  let front: GatewayInFront;

  beforeAll(async () => {
    const kinds: Record<string, Partial<PlainAsQuirks>> = {
      "basic-dcr": { accepts: ["client_secret_basic"] },
      "basic-pre": { accepts: ["client_secret_basic"] },
      "post-only": { accepts: ["client_secret_post"] },
      // RFC 8414 §2: absent means client_secret_basic; the token endpoint takes nothing else
      silent: { accepts: ["client_secret_basic"], offers: null },
      "origin-8414": { discovery: "rfc8414-at-origin" },
      defaults: { discovery: "defaults", challengeScope: "tools:read" },
      "no-expiry": { registration: { status: 200, secretExpiresAt: "omitted" } },
      "expired-secret": { registration: { status: 201, secretExpiresAt: Math.floor(Date.now() / 1000) - 60 } },
      "api-key": { requireHeader: { name: "X-API-Key", value: apiKey } },
      "static-bearer": { requireHeader: { name: "Authorization", value: `Bearer ${staticToken}` } },
    };
    for (const [name, quirks] of Object.entries(kinds)) up[name] = await startPlainAs(quirks);
    const servers = Object.fromEntries(Object.entries(up).map(([name, u]) => [name, { url: u.mcpUrl }]));
    front = await startGatewayInFront(
      {
        ...servers,
        "basic-pre": { url: up["basic-pre"]!.mcpUrl, oauth: { clientId: "my-gateway-client", clientSecret: "${PRE_SECRET}" } },
        "api-key": { url: up["api-key"]!.mcpUrl, headers: { "X-API-Key": "${PLAIN_API_KEY}" } },
        "static-bearer": { url: up["static-bearer"]!.mcpUrl, headers: { Authorization: "Bearer ${PLAIN_STATIC_TOKEN}" } },
      },
      { PRE_SECRET: preRegisteredSecret, PLAIN_API_KEY: apiKey, PLAIN_STATIC_TOKEN: staticToken },
    );
    up["basic-pre"]!.addClient({
      client_id: "my-gateway-client",
      client_secret: preRegisteredSecret,
      redirect_uris: [front.callback("basic-pre")],
      token_endpoint_auth_method: "client_secret_basic",
    });
  }, 60_000);
  afterAll(async () => {
    await front?.close();
    for (const u of Object.values(up)) await u.close();
  });

  it("basic only, registered dynamically: registers as a web client for Basic, and sends its secret in the header only", async () => {
    const u = up["basic-dcr"]!;
    expect(await whoami(front.url("basic-dcr"))).toBe(PLAIN_USER);
    const registered = onlyRegistration(u);
    // SEP-837, RFC 7591 §2
    expect(registered.asked).toMatchObject({
      application_type: "web",
      token_endpoint_auth_method: "client_secret_basic",
      redirect_uris: [front.callback("basic-dcr")],
      grant_types: ["authorization_code", "refresh_token"],
    });
    for (const r of tokenRequests(u)) {
      expect(basicAsSent(r)).toBe(`${registered.client_id}:${registered.client_secret}`);
      expect(form(r).has("client_secret")).toBe(false);
    }
  });

  it("basic only, pre-registered: a client id with '-' reaches the upstream readable in the Basic header", async () => {
    const u = up["basic-pre"]!;
    expect(await whoami(front.url("basic-pre"))).toBe(PLAIN_USER);
    expect(u.to("/oauth/register")).toHaveLength(0);
    for (const r of tokenRequests(u)) {
      // RFC 6749 §2.3.1 form-encodes the id: the WHATWG serializer leaves `-` as it is, as servers that compare without decoding need
      expect(basicAsSent(r)).toBe(`my-gateway-client:${preRegisteredSecret}`);
      expect(form(r).has("client_secret")).toBe(false);
    }
  });

  it("post only: registers for client_secret_post and sends id and secret in the body, no Authorization", async () => {
    const u = up["post-only"]!;
    expect(await whoami(front.url("post-only"))).toBe(PLAIN_USER);
    const registered = onlyRegistration(u);
    expect(registered.asked).toMatchObject({ application_type: "web", token_endpoint_auth_method: "client_secret_post" });
    for (const r of tokenRequests(u)) {
      expect(r.headers.authorization).toBeUndefined();
      expect(form(r).get("client_id")).toBe(registered.client_id);
      expect(form(r).get("client_secret")).toBe(registered.client_secret);
    }
  });

  it("metadata silent about auth methods: uses client_secret_basic, RFC 8414's default", async () => {
    const u = up.silent!;
    const metadata = (await (await fetch(`${u.origin}/.well-known/oauth-authorization-server/oauth`)).json()) as Record<string, unknown>;
    expect(metadata).not.toHaveProperty("token_endpoint_auth_methods_supported");

    expect(await whoami(front.url("silent"))).toBe(PLAIN_USER);
    const registered = onlyRegistration(u);
    expect(registered.asked.token_endpoint_auth_method).toBe("client_secret_basic");
    for (const r of tokenRequests(u)) {
      expect(basicAsSent(r)).toBe(`${registered.client_id}:${registered.client_secret}`);
      expect(form(r).has("client_secret")).toBe(false);
    }
  });

  it("MCP 2025-03-26 with RFC 8414 metadata at its origin and no RFC 9728: uses the endpoints that metadata names", async () => {
    const u = up["origin-8414"]!;
    expect(await whoami(front.url("origin-8414"))).toBe(PLAIN_USER);
    expect(u.to("/.well-known/oauth-protected-resource/mcp").length).toBeGreaterThan(0); // asked, and answered 404
    expect(u.to("/.well-known/oauth-authorization-server").length).toBeGreaterThan(0);
    // the metadata's endpoints are not the defaults: these prove it was read
    expect(u.to("/oauth/authorize")).toHaveLength(1);
    expect(u.to("/oauth/register")).toHaveLength(1);
    expect(u.to("/oauth/token").length).toBeGreaterThan(0);
    expect(u.requests.filter((r) => ["/authorize", "/token", "/register"].includes(r.path))).toEqual([]);
  });

  it("MCP 2025-03-26 with no metadata at all: the default /authorize, /token and /register at its origin, asking for the challenge's scope", async () => {
    const u = up.defaults!;
    expect(await whoami(front.url("defaults"))).toBe(PLAIN_USER);
    const registered = onlyRegistration(u);
    expect(registered.asked.application_type).toBe("web");
    const [authorization] = u.to("/authorize");
    expect(authorization!.query.get("client_id")).toBe(registered.client_id);
    // MCP §Scope Selection Strategy: the client asked for none, the upstream's 401 named one
    expect(authorization!.query.get("scope")).toBe("tools:read");
    expect(authorization!.query.get("code_challenge_method")).toBe("S256");
    expect(tokenRequests(u).length).toBeGreaterThan(0);
  });

  it("a registration answered 200 without client_secret_expires_at: the secret is kept and used", async () => {
    const u = up["no-expiry"]!;
    expect(await whoami(front.url("no-expiry"))).toBe(PLAIN_USER);
    const registered = onlyRegistration(u);
    expect(registered.client_secret).toBeTruthy();
    for (const r of tokenRequests(u)) expect(basicAsSent(r)).toBe(`${registered.client_id}:${registered.client_secret}`);
  });

  it("a registration whose secret has already expired: the sign-in stops with a clear page, not at the upstream", async () => {
    const u = up["expired-secret"]!;
    const { end, browser, state } = await front.signIn("expired-secret");
    const page = expectRefusal(end, browser, { state, issuer: front.gateway.publicUrl, error: "temporarily_unavailable", at: "/login" });
    expect(page).toContain("registered the gateway with a secret that has already expired");
    expect(u.to("/oauth/register")).toHaveLength(1);
    expect(u.to("/oauth/authorize")).toHaveLength(0);
  });

  it("fixed X-API-Key header and no OAuth: detected with the key, which goes on every request", async () => {
    const u = up["api-key"]!;
    expect(await whoami(front.url("api-key"))).toBe("anonymous");
    await expect(front.gateway.mounts.byName("api-key")!.mode()).resolves.toBe("none");
    const [detection, ...rest] = u.requests;
    // the detection ping carried the key: without it this upstream answers 401, which would mean OAuth
    expect(JSON.parse(detection!.body)).toMatchObject({ method: "ping" });
    expect(rest.length).toBeGreaterThan(0);
    for (const r of u.requests) {
      expect(r.path).toBe("/mcp");
      expect(r.headers["x-api-key"]).toBe(apiKey);
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  it("fixed Authorization header: a static credential, sent on every request instead of any user's token", async () => {
    const u = up["static-bearer"]!;
    expect(await whoami(front.url("static-bearer"))).toBe("anonymous");
    await expect(front.gateway.mounts.byName("static-bearer")!.mode()).resolves.toBe("static");
    expect(u.requests.length).toBeGreaterThan(0);
    for (const r of u.requests) {
      expect(r.path).toBe("/mcp");
      expect(r.headers.authorization).toBe(`Bearer ${staticToken}`);
    }
  });
});

describe("an upstream whose token endpoint fails", () => {
  let u: PlainAs;
  let front: GatewayInFront;
  beforeAll(async () => {
    u = await startPlainAs({ tokenError: { status: 500, error: "server_error" } });
    front = await startGatewayInFront({ failing: { url: u.mcpUrl } });
  });
  afterAll(async () => {
    await front?.close();
    await u?.close();
  });

  it("is registered with once, when the first sign-in starts, and that registration serves every later sign-in", async () => {
    // the gateway's own challenge and metadata register nothing
    const challenge = await fetch(front.url("failing"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(challenge.status).toBe(401);
    await (await fetch(`${front.gateway.publicUrl}/.well-known/oauth-protected-resource/mcp/failing`)).body?.cancel();
    expect(u.to("/oauth/register")).toHaveLength(0);

    const first = await front.signIn("failing");
    if (!("redirect" in first.end)) throw new Error(`HTTP ${first.end.status} ${first.end.text.slice(0, 300)}`);
    expect(first.end.redirect.searchParams.get("error")).toBe("temporarily_unavailable");
    expect(u.to("/oauth/token")).toHaveLength(1);
    expect(u.to("/oauth/register")).toHaveLength(1);

    u.quirks.tokenError = { status: 401, error: "invalid_client" };
    const second = await front.signIn("failing");
    if (!("redirect" in second.end)) throw new Error(`HTTP ${second.end.status} ${second.end.text.slice(0, 300)}`);
    expect(second.end.redirect.searchParams.get("error")).toBe("server_error");
    expect(u.to("/oauth/token")).toHaveLength(2);

    delete u.quirks.tokenError;
    const third = await front.signIn("failing");
    if (!("redirect" in third.end)) throw new Error(`HTTP ${third.end.status} ${third.end.text.slice(0, 300)}`);
    expect(third.end.redirect.searchParams.get("code")).toBeTruthy();

    expect(u.to("/oauth/register")).toHaveLength(1);
    const [client] = [...u.clients.values()];
    for (const r of u.to("/oauth/authorize")) expect(r.query.get("client_id")).toBe(client!.client_id);
  });
});
