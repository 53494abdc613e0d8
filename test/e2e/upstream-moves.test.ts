import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/store/memory.js";
import { connectWithOAuth } from "../support/connect.js";
import { grantFor as grant, refreshFor as refresh } from "../support/oauth-steps.js";
import { mcpHeaders } from "../support/mcp-calls.js";
import {
  PLAIN_USER,
  startGatewayInFront,
  startPlainAs,
  type GatewayInFront,
  type PlainAs,
  type PlainAsQuirks,
  type RecordedRequest,
} from "../support/plain-as.js";
import { freePort } from "../support/processes.js";
import { expectRefusal } from "../support/refusal.js";

/** Where a sign-in goes once discovery is done: a plain-as authorization server's endpoints, and the MCP 2025-03-26 defaults. */
const SIGN_IN_PATHS = ["/oauth/authorize", "/oauth/token", "/oauth/register", "/authorize", "/token", "/register"];
/** Below the gateway's 120 s margin: every refresh of such a grant goes upstream. */
const SHORT_LIVED = 60;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function upstream(quirks: Partial<PlainAsQuirks>): Promise<PlainAs> {
  const up = await startPlainAs(quirks);
  closers.push(() => up.close());
  return up;
}

async function gatewayInFront(...args: Parameters<typeof startGatewayInFront>): Promise<GatewayInFront> {
  const front = await startGatewayInFront(...args);
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= front.close());
  closers.push(close);
  return { ...front, close };
}

/**
 * An MCP server and two authorization servers, each of which issues tokens for it: its RFC 9728
 * metadata names AS1 until the test moves it (`mcp.quirks.authorizationServers = [as2, …]`). AS1's
 * access tokens are short-lived, so a refresh of its grant always reaches it.
 */
async function moving(): Promise<{ mcp: PlainAs; as1: PlainAs; as2: PlainAs }> {
  const as1 = await upstream({ expiresIn: SHORT_LIVED });
  const as2 = await upstream({});
  const mcp = await upstream({ authorizationServers: [as1] });
  as1.quirks.resources = as2.quirks.resources = [mcp.mcpUrl];
  return { mcp, as1, as2 };
}

/** Sign in with the MCP SDK client and call `whoami`: the user the upstream saw. */
async function whoami(mcpUrl: string): Promise<string> {
  const { client } = await connectWithOAuth(mcpUrl);
  try {
    return await called(client);
  } finally {
    await client.close();
  }
}

/** `whoami` through the MCP SDK client holding a gateway access token. */
async function whoamiWith(mcpUrl: string, accessToken: string): Promise<string> {
  const client = new Client({ name: "e2e-bearer", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } }));
  try {
    return await called(client);
  } finally {
    await client.close();
  }
}

async function called(client: Client): Promise<string> {
  const result = await client.callTool({ name: "whoami", arguments: {} });
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  return (result.content as { text: string }[])[0]!.text;
}

const bearer = (r: RecordedRequest) => /^Bearer (.+)$/.exec(r.headers.authorization ?? "")?.[1];
const form = (r: RecordedRequest) => new URLSearchParams(r.body);

/** `tools/call` requests at the MCP server that carried an access token `as` issued. */
const toolCallsWithTokenOf = (mcp: PlainAs, as: PlainAs) =>
  mcp.to("/mcp").filter((r) => r.body.includes('"tools/call"') && as.issued.access.includes(bearer(r) ?? ""));

/** How a token request authenticated: its grant type, and whether the secret came in the Basic header or the form. */
const tokenRequestShape = (r: RecordedRequest) => ({
  grant: form(r).get("grant_type"),
  secretIn: r.headers.authorization?.startsWith("Basic ") ? "basic" : form(r).has("client_secret") ? "form" : "none",
});

/** Everything a request carries, in every encoding a credential could travel in: raw, form-decoded, and Basic decoded. */
function carried(r: RecordedRequest): string {
  const basic = /^Basic (.+)$/i.exec(r.headers.authorization ?? "")?.[1];
  const decodedBasic = basic ? Buffer.from(basic, "base64").toString("utf8") : "";
  const lenient = (s: string) => {
    try {
      return decodeURIComponent(s.replaceAll("+", " "));
    } catch {
      return s;
    }
  };
  return [r.path, r.query.toString(), [...r.query.values()], JSON.stringify(r.headers), r.body, [...form(r).values()], decodedBasic, lenient(decodedBasic)]
    .flat()
    .join("\n");
}

/** The requests `up` received that carry any of `values`, with the path and which value, for a readable failure. */
const carrying = (up: PlainAs, values: string[]) =>
  up.requests.flatMap((r) => values.filter((v) => carried(r).includes(v)).map((v) => `${r.method} ${r.path} carries ${v.slice(0, 12)}…`));

/** Every client id and secret `up` holds. */
const credentialsAt = (up: PlainAs) => [...up.clients.values()].flatMap((c) => [c.client_id, ...(c.client_secret ? [c.client_secret] : [])]);

/**
 * SEP-2352, an upstream that moves to another authorization server: the next sign-in follows it,
 * while a grant's tokens go back only to the server that issued them, and nothing of the gateway's
 * client at one server (id, secret, tokens) is ever shown to the other.
 */
describe("an upstream whose RFC 9728 metadata starts naming another authorization server", () => {
  it("registered dynamically: the next sign-in registers at AS2 and works; a grant from AS1 still refreshes at AS1, and AS2 never sees AS1's client or tokens", async () => {
    const { mcp, as1, as2 } = await moving();
    const front = await gatewayInFront({ moving: { url: mcp.mcpUrl } });
    const base = front.gateway.publicUrl;
    const a = await grant(base, front.url("moving"));
    expect(as1.to("/oauth/register")).toHaveLength(1);
    expect(as1.issued.refresh).toHaveLength(1);

    // the resource now trusts both, and names AS2 first
    mcp.quirks.authorizationServers = [as2, as1];
    expect(await whoami(front.url("moving"))).toBe(PLAIN_USER);
    expect(as2.to("/oauth/register")).toHaveLength(1);
    const [atAs2] = [...as2.clients.values()];
    expect(as2.to("/oauth/authorize").map((r) => r.query.get("client_id"))).toEqual([atAs2!.client_id]);
    expect(as1.to("/oauth/authorize")).toHaveLength(1);
    expect(toolCallsWithTokenOf(mcp, as2).length).toBeGreaterThan(0);

    const before = as1.to("/oauth/token").length;
    const refreshed = await refresh(base, a.clientId, a.tokens.refresh_token!);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    const [upstreamRefresh, ...more] = as1.to("/oauth/token").slice(before);
    expect(more).toEqual([]);
    expect(form(upstreamRefresh!).get("grant_type")).toBe("refresh_token");
    expect(form(upstreamRefresh!).get("refresh_token")).toBe(as1.issued.refresh[0]);
    // the refreshed grant still reaches the resource, with AS1's new token
    expect(await whoamiWith(front.url("moving"), refreshed.body.access_token!)).toBe(PLAIN_USER);
    expect(toolCallsWithTokenOf(mcp, as1).map(bearer)).toEqual([as1.issued.access.at(-1)]);

    expect(as2.to("/oauth/token").every((r) => form(r).get("grant_type") === "authorization_code")).toBe(true);
    expect(carrying(as2, [...credentialsAt(as1), ...as1.issued.refresh, ...as1.issued.access])).toEqual([]);
  });

  it("with a pre-registered client: the next sign-in stops with a page naming the problem, the client's id and secret never reach AS2, and a grant from AS1 still refreshes there", async () => {
    const { mcp, as1, as2 } = await moving();
    const secret = randomBytes(24).toString("base64url");
    const front = await gatewayInFront(
      { moving: { url: mcp.mcpUrl, oauth: { clientId: "gateway-at-as1", clientSecret: "${AS1_SECRET}" } } },
      { AS1_SECRET: secret },
    );
    as1.addClient({
      client_id: "gateway-at-as1",
      client_secret: secret,
      redirect_uris: [front.callback("moving")],
      token_endpoint_auth_method: "client_secret_basic",
    });
    const base = front.gateway.publicUrl;
    const a = await grant(base, front.url("moving"));
    expect(as1.to("/oauth/authorize").map((r) => r.query.get("client_id"))).toEqual(["gateway-at-as1"]);

    mcp.quirks.authorizationServers = [as2, as1];
    const { end, browser, state } = await front.signIn("moving");
    const page = expectRefusal(end, browser, { state, issuer: base, error: "temporarily_unavailable", at: "/login" });
    expect(page).toContain(`now names the authorization server ${as2.issuer}, but its pre-registered client belongs to ${as1.issuer}`);
    // the gateway looked at AS2, and went no further
    expect(as2.requests.length).toBeGreaterThan(0);
    expect(as2.requests.filter((r) => !r.path.startsWith("/.well-known/")).map((r) => r.path)).toEqual([]);

    const refreshed = await refresh(base, a.clientId, a.tokens.refresh_token!);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(form(as1.to("/oauth/token").at(-1)!).get("refresh_token")).toBe(as1.issued.refresh[0]);

    expect(as2.clients.size).toBe(0);
    expect(carrying(as2, ["gateway-at-as1", secret, ...as1.issued.refresh, ...as1.issued.access])).toEqual([]);
  });

  it("with a pre-registered client, after a restart following the move: the client stays with AS1, so the sign-in stops and AS2 gets neither its id nor its secret", async () => {
    const { mcp, as1, as2 } = await moving();
    const secret = randomBytes(24).toString("base64url");
    const [port, store] = [await freePort(), new MemoryStore()];
    closers.push(() => store.close());
    const servers = { moving: { url: mcp.mcpUrl, oauth: { clientId: "gateway-at-as1", clientSecret: "${AS1_SECRET}" } } };
    const first = await gatewayInFront(servers, { AS1_SECRET: secret }, { port, store });
    const registered = { client_id: "gateway-at-as1", redirect_uris: [first.callback("moving")], token_endpoint_auth_method: "client_secret_basic" as const };
    as1.addClient({ ...registered, client_secret: secret });
    // AS2 happens to know a client of that id: had the gateway gone there, it would have sent the secret
    as2.addClient({ ...registered, client_secret: "not-the-secret" });
    await grant(first.gateway.publicUrl, first.url("moving"));
    await first.close();

    mcp.quirks.authorizationServers = [as2, as1];
    const again = await gatewayInFront(servers, { AS1_SECRET: secret }, { port, store });
    const { end, browser, state } = await again.signIn("moving");
    const page = expectRefusal(end, browser, { state, issuer: again.gateway.publicUrl, error: "temporarily_unavailable", at: "/login" });
    expect(page).toContain(`its pre-registered client belongs to ${as1.issuer}`);
    expect(carrying(as2, ["gateway-at-as1", secret])).toEqual([]);
  });

  it("after a restart that knows only AS2: a grant from AS1 ends with invalid_grant, and its refresh token goes nowhere", async () => {
    const { mcp, as1, as2 } = await moving();
    const [port, store] = [await freePort(), new MemoryStore()];
    closers.push(() => store.close());
    const servers = { moving: { url: mcp.mcpUrl } };
    const first = await gatewayInFront(servers, {}, { port, store });
    const base = first.gateway.publicUrl;
    const a = await grant(base, first.url("moving"));
    await first.close();

    mcp.quirks.authorizationServers = [as2];
    const again = await gatewayInFront(servers, {}, { port, store });
    expect(again.gateway.publicUrl).toBe(base);
    // a sign-in after the restart registers at AS2 and works, so the gateway holds a client there
    expect(await whoami(again.url("moving"))).toBe(PLAIN_USER);
    expect(as2.clients.size).toBe(1);

    const atAs1 = as1.requests.length;
    const refused = await refresh(base, a.clientId, a.tokens.refresh_token!);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: "invalid_grant", error_description: expect.stringContaining("upstream authorization server") as unknown });
    expect(as1.requests.slice(atAs1).filter((r) => SIGN_IN_PATHS.includes(r.path))).toEqual([]);
    expect(as2.to("/oauth/token").map((r) => form(r).get("grant_type"))).toEqual(["authorization_code"]);
    expect(carrying(as2, [...credentialsAt(as1), ...as1.issued.refresh, ...as1.issued.access])).toEqual([]);
  });
});

/**
 * A pre-registered client at a server whose metadata does not say how it takes the secret, and whose
 * token endpoint takes only the form: the gateway's first guess (Basic, RFC 8414 §2's default) is
 * refused, the form works, and the gateway keeps to it.
 */
describe("a secret method the gateway can only guess", () => {
  it.each([
    ["with the WWW-Authenticate challenge RFC 6749 §5.2 requires", false],
    ["as a bare JSON error", true],
  ])("invalid_client answered %s: the sign-in works after one Basic attempt, and the refresh sends the form at once", async (_how, bare) => {
    const up = await upstream({ accepts: ["client_secret_post"], offers: null, expiresIn: SHORT_LIVED, ...(bare ? { bareInvalidClient: true } : {}) });
    const metadata = (await (await fetch(`${up.origin}/.well-known/oauth-authorization-server/oauth`)).json()) as Record<string, unknown>;
    expect(metadata).not.toHaveProperty("token_endpoint_auth_methods_supported");
    const secret = randomBytes(24).toString("base64url");
    const front = await gatewayInFront(
      { guessed: { url: up.mcpUrl, oauth: { clientId: "form-only", clientSecret: "${FORM_SECRET}" } } },
      { FORM_SECRET: secret },
    );
    up.addClient({
      client_id: "form-only",
      client_secret: secret,
      redirect_uris: [front.callback("guessed")],
      token_endpoint_auth_method: "client_secret_post",
    });
    const base = front.gateway.publicUrl;

    const a = await grant(base, front.url("guessed"));
    expect(await whoamiWith(front.url("guessed"), a.tokens.access_token!)).toBe(PLAIN_USER);
    expect(up.to("/oauth/token").map(tokenRequestShape)).toEqual([
      { grant: "authorization_code", secretIn: "basic" },
      { grant: "authorization_code", secretIn: "form" },
    ]);

    const refreshed = await refresh(base, a.clientId, a.tokens.refresh_token!);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(up.to("/oauth/token").map(tokenRequestShape).slice(2)).toEqual([{ grant: "refresh_token", secretIn: "form" }]);
  });
});

/**
 * MCP Authorization §Step-Up Authorization: a 403 `insufficient_scope` holds the grant's next refresh
 * back only when it names a scope the grant lacks, since only then can authorizing again help.
 */
describe("an upstream's 403 insufficient_scope", () => {
  /** `tools/call` through the gateway with a gateway access token: the status and the gateway's challenge. */
  async function toolCall(mcpUrl: string, accessToken: string): Promise<{ status: number; challenge: string }> {
    const response = await fetch(mcpUrl, {
      method: "POST",
      headers: mcpHeaders({ authorization: `Bearer ${accessToken}`, "mcp-protocol-version": "2025-06-18" }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } }),
    });
    await response.body?.cancel();
    return { status: response.status, challenge: response.headers.get("www-authenticate") ?? "" };
  }

  it("naming only a scope the grant has: the next refresh works; naming one it lacks: the next refresh is refused once", async () => {
    const up = await upstream({ insufficientScope: "tools:read" });
    const front = await gatewayInFront({ scoped: { url: up.mcpUrl } });
    const base = front.gateway.publicUrl;
    const a = await grant(base, front.url("scoped"), "tools:read");
    expect(a.tokens.scope).toBe("tools:read");

    const covered = await toolCall(front.url("scoped"), a.tokens.access_token!);
    expect(covered.status).toBe(403);
    expect(covered.challenge).toContain('error="insufficient_scope"');
    expect(covered.challenge).toContain('scope="tools:read"');
    const works = await refresh(base, a.clientId, a.tokens.refresh_token!);
    expect(works.status, JSON.stringify(works.body)).toBe(200);

    // the contrast: the same setup arms the refusal when the upstream asks for more
    up.quirks.insufficientScope = "tools:write";
    const wider = await toolCall(front.url("scoped"), works.body.access_token!);
    expect(wider.status).toBe(403);
    expect(wider.challenge).toContain('scope="tools:read tools:write"');
    const refused = await refresh(base, a.clientId, works.body.refresh_token!);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");
    const afterwards = await refresh(base, a.clientId, works.body.refresh_token!);
    expect(afterwards.status, JSON.stringify(afterwards.body)).toBe(200);
  });
});

/**
 * MCP 2025-03-26's default endpoints are for a server that asked for credentials and has no RFC 9728
 * metadata (404); an RFC 9728 URL that answers otherwise (a front refusing or redirecting it) is a
 * failure to learn where to sign in, never a licence to guess.
 */
describe("an upstream that asks for credentials and whose RFC 9728 URLs fail", () => {
  it.each([403, 302])("answering %i: the sign-in ends on a 503 page, and nothing goes to the upstream's default endpoints", async (status) => {
    const up = await upstream({ discovery: "defaults", protectedResourceStatus: status });
    const front = await gatewayInFront({ fronted: { url: up.mcpUrl } });
    const { end, browser, state } = await front.signIn("fronted");
    const page = expectRefusal(end, browser, { state, issuer: front.gateway.publicUrl, error: "temporarily_unavailable", at: "/login" });
    expect(page).toContain(`answered HTTP ${status}`);
    const asked = up.requests.map((r) => r.path);
    expect(asked).toContain("/.well-known/oauth-protected-resource/mcp");
    expect(asked).toContain("/.well-known/oauth-protected-resource");
    expect(asked.filter((path) => SIGN_IN_PATHS.includes(path))).toEqual([]);

    // the contrast: answered 404, the same upstream is a 2025-03-26 server, signed in at its default endpoints
    delete up.quirks.protectedResourceStatus;
    expect(await whoami(front.url("fronted"))).toBe(PLAIN_USER);
    expect(up.to("/register")).toHaveLength(1);
  });
});
