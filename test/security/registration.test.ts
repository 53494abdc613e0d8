import { afterEach, describe, expect, it } from "vitest";
import type { ClientRecord } from "../../src/as/clients.js";
import type { Config } from "../../src/config/types.js";
import { sha256 } from "../../src/crypto.js";
import { storeKey } from "../../src/store/store.js";
import { TestBrowser, loginForm } from "../support/browser.js";
import { REDIRECT_URI, clientAuthorizeUrl, obtainCode, redeem, tokenRequest } from "../support/oauth-steps.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function gateway(registration: Partial<Config["registration"]> = {}): Promise<string> {
  stack = await startStack({ config: { registration } });
  return stack.gateway.publicUrl;
}

type Json = Record<string, unknown>;

async function call(url: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const response = await fetch(url, {
    method: init.method ?? "GET",
    headers: {
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
      ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    redirect: "manual",
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: (text.startsWith("{") ? JSON.parse(text) : {}) as Json };
}

const registerRaw = (gw: string, metadata: Json) =>
  call(`${gw}/register`, { method: "POST", body: { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none", ...metadata } });

async function registerOk(gw: string, metadata: Json = {}): Promise<Json & { client_id: string; registration_access_token: string }> {
  const response = await registerRaw(gw, metadata);
  expect(response.status, response.text).toBe(201);
  return response.body as Json & { client_id: string; registration_access_token: string };
}

/** Follow the gateway's own redirects from a URL: Screen 1, an error page, or the first hop off the gateway. */
async function firstStop(browser: TestBrowser, gw: string, url: string) {
  let page = await browser.request(url);
  while (page.location?.startsWith(gw)) page = await browser.request(page.location);
  return { ...page, screen1: page.status === 200 && loginForm(page.text) !== undefined };
}

describe("registration", () => {
  it("MC4 registration refuses redirect URIs that could leak a code", async () => {
    const gw = await gateway();
    const refused = [
      "javascript:alert(document.domain)",
      "JavaScript:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "file:///etc/passwd",
      "vbscript:msgbox(1)",
      "blob:https://client.example/0b9a",
      "https://client.example/cb#code",
      "https://client.example/cb#",
      "https://*.client.example/cb",
      "https://client.example/*",
      "https://user:pass@client.example/cb",
      "https://attacker@client.example/cb",
      "http://client.example/cb",
      "http://localhost.evil.example/cb",
      "http://127.0.0.1.evil.example/cb",
      "mailto:owner@client.example",
      "/relative/cb",
    ];
    for (const uri of refused) {
      const response = await registerRaw(gw, { redirect_uris: [uri] });
      expect([uri, response.status, response.body.error]).toEqual([uri, 400, "invalid_redirect_uri"]);
    }
    // one bad URI among good ones refuses the whole registration
    expect((await registerRaw(gw, { redirect_uris: [REDIRECT_URI, "javascript:alert(1)"] })).body.error).toBe("invalid_redirect_uri");

    const accepted = [
      "https://client.example/oauth/callback",
      "http://localhost/callback",
      "http://127.0.0.1:6274/oauth/callback",
      "http://[::1]:51234/cb",
      "com.example.app:/oauth2redirect",
      "vscode://vscode.github-authentication/did-authenticate",
      "claude://claude.ai/oauth/callback",
    ];
    for (const uri of accepted) expect((await registerRaw(gw, { redirect_uris: [uri] })).status, uri).toBe(201);
    // Cursor registers its app scheme with application_type "web"
    const cursor = await registerRaw(gw, { redirect_uris: ["cursor://anysphere.cursor-mcp/oauth/callback"], application_type: "web", client_name: "Cursor" });
    expect(cursor.status).toBe(201);
  });

  it("MC5 registration outside the operator's allowlist is refused", async () => {
    const gw = await gateway({ redirectUriAllow: ["https://app.example/oauth/", "https://tools.example", "loopback"] });
    for (const uri of [
      "https://app.example/oauth/callback",
      "https://tools.example/cb",
      "https://tools.example:8443/cb",
      "http://127.0.0.1:7777/cb",
      "http://[::1]/cb",
    ])
      expect((await registerRaw(gw, { redirect_uris: [uri] })).status, uri).toBe(201);
    for (const uri of [
      "https://app.example/other/callback",
      "https://tools.example.evil.example/cb",
      "https://evil.example/oauth/callback",
      "cursor://anysphere.cursor-mcp/oauth/callback",
      "https://localhost.evil.example/cb",
      "https://127.0.0.1/cb",
    ]) {
      const response = await registerRaw(gw, { redirect_uris: [uri] });
      expect([uri, response.status, response.body.error]).toEqual([uri, 400, "invalid_redirect_uri"]);
      expect(response.body.error_description).toContain("--redirect-uri-allow");
    }
  });

  it("MC5 with an allowlist, no device client: registration and /device_authorization refuse the device grant", async () => {
    const gw = await gateway({ redirectUriAllow: ["https://app.example/oauth/"] });
    const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code";
    for (const metadata of [
      { grant_types: [deviceGrant] },
      { redirect_uris: ["https://app.example/oauth/cb"], grant_types: ["authorization_code", deviceGrant] },
    ]) {
      const response = await call(`${gw}/register`, { method: "POST", body: { token_endpoint_auth_method: "none", ...metadata } });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: "invalid_client_metadata" });
      expect(response.body.error_description).toContain("--redirect-uri-allow");
    }
    // a device client registered before the operator narrowed redirect URIs gets no device code either
    const earlier: ClientRecord = {
      client_id: "registered-before",
      client_id_issued_at: 1,
      redirect_uris: [],
      token_endpoint_auth_method: "none",
      grant_types: [deviceGrant],
      response_types: [],
      client_name: "Trusted Vendor",
    };
    await stack!.gateway.store.put(storeKey.client(earlier.client_id), earlier, 3600);
    const started = await fetch(`${gw}/device_authorization`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: earlier.client_id }).toString(),
    });
    expect(started.status).toBe(400);
    expect(await started.json()).toMatchObject({ error: "unauthorized_client" });
  });

  it("MC6 an unregistered redirect_uri gets an error page, never a redirect", async () => {
    const gw = await gateway();
    const { client_id } = await registerOk(gw);
    const browser = new TestBrowser();
    for (const redirect_uri of [
      "https://evil.example/callback",
      "http://127.0.0.1:33418/callback/evil",
      "http://127.0.0.1:33418/callback?x=1",
      "http://localhost:33418/callback",
      "http://evil@127.0.0.1:33418/callback",
      "http://127.0.0.1:33418@evil.example/callback",
      `${REDIRECT_URI}#frag`,
      "javascript:alert(1)",
    ]) {
      const page = await browser.request(clientAuthorizeUrl(gw, client_id, { redirect_uri }));
      expect([redirect_uri, page.status, page.location]).toEqual([redirect_uri, 400, undefined]);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      expect(page.text).toContain("invalid_request");
    }
    // the control: the registered URI, on another loopback port (RFC 8252 §7.3), goes on to Screen 1
    const ok = await browser.request(clientAuthorizeUrl(gw, client_id, { redirect_uri: "http://127.0.0.1:40001/callback" }));
    expect(ok.status).toBe(302);
    expect(ok.location).toMatch(new RegExp(`^${gw}/login\\?request=`));
  });

  it("MC7 a registration flood is cut by the per-address limit and the client cap, and unused clients expire", async () => {
    const gw = await gateway({ maxClients: 3, unusedClientTtl: 3600 });
    const used = await registerOk(gw);
    const code = await obtainCode(gw, { clientId: used.client_id });
    expect((await redeem(gw, code)).status).toBe(200);
    const unused = await registerOk(gw);
    await registerOk(gw);

    const capped = await registerRaw(gw, {});
    expect(capped.status).toBe(429);
    expect(capped.body.error).toBe("temporarily_unavailable");
    expect(capped.body.error_description).toContain("--max-clients");
    const retryAfter = Number(capped.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await stack!.gateway.store.get(storeKey.client(unused.client_id))).toBeDefined();

    // past the window and the unused-client lifetime: the client that never redeemed a code is gone, the one that did stays
    stack!.clock.advance(3601_000);
    const browser = new TestBrowser();
    const gone = await browser.request(clientAuthorizeUrl(gw, unused.client_id));
    expect([gone.status, gone.location]).toEqual([400, undefined]);
    expect(gone.text).toContain("invalid_client");
    expect((await browser.request(clientAuthorizeUrl(gw, used.client_id))).status).toBe(302);
    // a new window takes registrations again
    await registerOk(gw);

    // the per-address limit counts every attempt, valid or not: 60 per 10 minutes
    stack!.clock.advance(601_000);
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) statuses.push((await registerRaw(gw, { redirect_uris: ["javascript:x"] })).status);
    expect(statuses.slice(0, 60).every((s) => s === 400)).toBe(true);
    const limited = await registerRaw(gw, {});
    expect([statuses[60], limited.status]).toEqual([429, 429]);
    expect(limited.body.error_description).toContain("this address");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("MC8 a registration is read, changed or deleted only with its registration access token", async () => {
    const gw = await gateway();
    const a = await registerOk(gw, { client_name: "A", token_endpoint_auth_method: "client_secret_basic" });
    const b = await registerOk(gw, { client_name: "B" });
    const uri = `${gw}/register/${a.client_id}`;
    expect(a.registration_client_uri).toBe(uri);
    const stored = await stack!.gateway.store.get<ClientRecord>(storeKey.client(a.client_id));
    expect(stored?.registration_access_token_hash).toBe(sha256(a.registration_access_token));
    expect(JSON.stringify(stored)).not.toContain(a.registration_access_token);

    const refusals = [
      { token: undefined },
      { token: b.registration_access_token },
      { token: `${a.registration_access_token}x` },
      { token: a.registration_access_token.slice(0, -1) },
    ];
    const update = { ...a, client_name: "taken over", redirect_uris: ["https://evil.example/cb"] };
    for (const { token } of refusals)
      for (const method of ["GET", "PUT", "DELETE"]) {
        const response = await call(uri, { method, token, ...(method === "PUT" ? { body: update } : {}) });
        expect([method, response.status]).toEqual([method, 401]);
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer .*error="invalid_token"/);
      }
    // an unknown client answers like a wrong token: nothing tells an attacker which ids exist
    const unknown = await call(`${gw}/register/unknown-client`, { token: a.registration_access_token });
    expect(unknown.status).toBe(401);

    const read = await call(uri, { token: a.registration_access_token });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ client_id: a.client_id, client_name: "A", redirect_uris: [REDIRECT_URI], registration_client_uri: uri });
    expect(read.text).not.toMatch(/hash|used/);

    // RFC 7592 §2.2: the full metadata with the client's own client_id; the secret cannot be chosen
    const bad = [
      { ...read.body, client_id: b.client_id },
      { ...read.body, client_secret: "chosen-by-the-client" },
      { ...read.body, redirect_uris: ["javascript:alert(1)"] },
      { ...read.body, token_endpoint_auth_method: "none" },
    ];
    for (const body of bad) expect((await call(uri, { method: "PUT", token: a.registration_access_token, body })).status).toBe(400);
    const changed = await call(uri, { method: "PUT", token: a.registration_access_token, body: { ...read.body, client_name: "A, renamed" } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ client_id: a.client_id, client_name: "A, renamed" });
    expect(changed.body).not.toHaveProperty("client_secret");
    expect((await call(`${gw}/register/${b.client_id}`, { token: b.registration_access_token })).body.client_name).toBe("B");
    // the secret still works after the update
    const code = await obtainCode(gw, { clientId: a.client_id });
    const basic = `Basic ${Buffer.from(`${a.client_id}:${a.client_secret as string}`).toString("base64")}`;
    const form = { grant_type: "authorization_code", code: code.code, code_verifier: code.verifier, redirect_uri: REDIRECT_URI };
    expect((await tokenRequest(gw, form, { authorization: basic })).status).toBe(200);

    expect((await call(uri, { method: "DELETE", token: a.registration_access_token })).status).toBe(204);
    expect((await call(uri, { token: a.registration_access_token })).status).toBe(401);
    const page = await new TestBrowser().request(clientAuthorizeUrl(gw, a.client_id));
    expect([page.status, page.location]).toEqual([400, undefined]);
    const token = await tokenRequest(gw, { ...form, code: "x" }, { authorization: basic });
    expect([token.status, token.body.error]).toEqual([401, "invalid_client"]);
    expect((await call(`${gw}/register/${b.client_id}`, { token: b.registration_access_token })).status).toBe(200);
  });

  it("MC9 changing redirect URIs asks for consent again", async () => {
    const gw = await gateway();
    const client = await registerOk(gw, { client_name: "Remembered" });
    const browser = new TestBrowser({ "sec-fetch-site": "none" });
    const first = await browser.authorize(clientAuthorizeUrl(gw, client.client_id), { redirectUri: REDIRECT_URI, ...LOGIN, remember: true });
    expect(first.searchParams.get("code")).toBeTruthy();
    // the remembered approval works: no Screen 1 the second time
    const second = await firstStop(browser, gw, clientAuthorizeUrl(gw, client.client_id));
    expect(second.screen1).toBe(false);
    expect(second.location).toBeDefined();

    const current = await call(`${gw}/register/${client.client_id}`, { token: client.registration_access_token });
    const updated = await call(`${gw}/register/${client.client_id}`, {
      method: "PUT",
      token: client.registration_access_token,
      body: { ...current.body, redirect_uris: [REDIRECT_URI, "https://new-host.example/cb"] },
    });
    expect(updated.status).toBe(200);

    const third = await firstStop(browser, gw, clientAuthorizeUrl(gw, client.client_id));
    expect(third.screen1).toBe(true);
    expect(third.text).toContain("Remembered");
  });

  it("MC28 a redirect URI on the gateway's own origin is refused at registration, at update and at /authorize", async () => {
    const gw = await gateway();
    const port = new URL(gw).port;
    const own = [`${gw}/login?request=planted`, `http://localhost:${port}/cb`, `http://[::1]:${port}/`, `${gw}/authorize`];
    for (const uri of own) {
      const response = await registerRaw(gw, { redirect_uris: [REDIRECT_URI, uri] });
      expect([uri, response.status, response.body.error]).toEqual([uri, 400, "invalid_redirect_uri"]);
      expect(response.body.error_description).toContain("gateway's own address");
    }
    // RFC 7592 update: the same refusal
    const client = await registerOk(gw);
    const uri = `${gw}/register/${client.client_id}`;
    const current = await call(uri, { token: client.registration_access_token });
    const update = await call(uri, { method: "PUT", token: client.registration_access_token, body: { ...current.body, redirect_uris: [`${gw}/login`] } });
    expect([update.status, update.body.error]).toEqual([400, "invalid_redirect_uri"]);

    // a loopback URI registered without the gateway's port matches any port (RFC 8252 §7.3), but never the gateway's
    const anyPort = await registerOk(gw, { redirect_uris: ["http://127.0.0.1/login", "http://localhost/login"] });
    const browser = new TestBrowser();
    for (const redirect_uri of [`http://127.0.0.1:${port}/login`, `http://localhost:${port}/login`]) {
      const page = await browser.request(clientAuthorizeUrl(gw, anyPort.client_id, { redirect_uri }));
      expect([redirect_uri, page.status, page.location]).toEqual([redirect_uri, 400, undefined]);
    }
    // the control: another port goes on to Screen 1, and a port next to the gateway's registers
    const elsewhere = await browser.request(clientAuthorizeUrl(gw, anyPort.client_id, { redirect_uri: "http://127.0.0.1:40001/login" }));
    expect([elsewhere.status, elsewhere.location?.startsWith(`${gw}/login?request=`)]).toEqual([302, true]);
    expect((await registerRaw(gw, { redirect_uris: [`http://localhost:${Number(port) + 1}/cb`] })).status).toBe(201);
  });

  it("MC30 app schemes other than reverse-domain ones and MCP clients' own are refused, and redirect URIs are kept in canonical form", async () => {
    const gw = await gateway();
    const refused = [
      "ms-msdt:-id PCWDiagnostic /skip force",
      "ms-msdt:/id",
      "search-ms:query=invoice&crumb=location:\\\\evil.example\\share",
      "search-ms://query=x",
      "ms-officecmd:{}",
      "chrome://settings",
      "itms-services://?action=download-manifest&url=https://evil.example/m.plist",
      "gopher://evil.example:70/_x",
      "ldap://evil.example/dc=x",
      "dict://evil.example:11211/stat",
      "myapp://callback",
      // read by the URL parser as https://evil.example/cb, or with evil.example as the host
      "https:evil.example/cb",
      "https:/evil.example/cb",
      "https:///evil.example/cb",
      "https://evil.example\\@client.example/cb",
      "https://client.example\\.evil.example/cb",
      "https://client.example/a/../cb",
      "https://client.example/%2e%2e/cb",
      "https://cli\tent.example/cb",
      "http://127.1/cb",
      "https://%65vil.example/cb",
    ];
    for (const uri of refused) {
      const response = await registerRaw(gw, { redirect_uris: [uri] });
      expect([uri, response.status, response.body.error]).toEqual([uri, 400, "invalid_redirect_uri"]);
    }
    // every scheme a real MCP client registers, and reverse-domain ones (RFC 8252 §7.1)
    const accepted = [
      "cursor://anysphere.cursor-mcp/oauth/callback",
      "vscode://vscode.github-authentication/did-authenticate",
      "vscode-insiders://vscode.github-authentication/did-authenticate",
      "claude://claude.ai/oauth/callback",
      "windsurf://codeium.windsurf/oauth/callback",
      "com.example.app:/oauth2redirect",
      "https://claude.ai/api/mcp/auth_callback",
      "https://chatgpt.com/connector/oauth/abc123",
      "http://127.0.0.1/",
    ];
    const all = await registerOk(gw, { redirect_uris: accepted });
    expect(all.redirect_uris).toEqual(accepted);

    // harmless differences are kept in the form the URL parser gives, which is the one compared at /authorize
    const written = "HTTPS://Client.Example:443";
    const client = await registerOk(gw, { redirect_uris: [written] });
    expect(client.redirect_uris).toEqual(["https://client.example/"]);
    expect((await stack!.gateway.store.get<ClientRecord>(storeKey.client(client.client_id)))?.redirect_uris).toEqual(["https://client.example/"]);
    const browser = new TestBrowser();
    for (const redirect_uri of [written, "https://client.example/", "https://client.example"]) {
      const page = await browser.request(clientAuthorizeUrl(gw, client.client_id, { redirect_uri }));
      expect([redirect_uri, page.status, page.location?.startsWith(`${gw}/login?request=`)]).toEqual([redirect_uri, 302, true]);
    }
    for (const redirect_uri of ["https:client.example/", "https://client.example\\", "https://client.example/./"]) {
      const page = await browser.request(clientAuthorizeUrl(gw, client.client_id, { redirect_uri }));
      expect([redirect_uri, page.status, page.location]).toEqual([redirect_uri, 400, undefined]);
    }
  });
});
