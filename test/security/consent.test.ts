import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPROVALS_PER_USER } from "../../src/login/approvals.js";
import { startMetadataWorld, type MetadataWorld } from "../support/metadata-world.js";
import { TestBrowser, loginForm } from "../support/browser.js";
import { REDIRECT_URI, clientAuthorizeUrl, openScreen1, register } from "../support/oauth-steps.js";
import { metadataDocument, type DocumentServer } from "../support/https.js";
import type { GatewayProcess } from "../support/processes.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md MC1–MC3, MC11, MC27, MC31, WP3: Screen 1 on every authorization, and what a remembered approval covers. */

const DAY_MS = 24 * 3600 * 1000;
/** A navigation the user started (typed, bookmarked, opened by a desktop MCP client): `Sec-Fetch-Site: none`. */
const userStarted = () => new TestBrowser({ "sec-fetch-site": "none" });

/** Open the client's authorization URL; what the browser lands on after /authorize sends it to /login. */
async function authorizeOnce(stack: Stack, browser: TestBrowser, clientId: string, opts: { redirectUri?: string; site?: string; scope?: string } = {}) {
  const headers: Record<string, string> = opts.site === undefined ? {} : { "sec-fetch-site": opts.site };
  const extra = { ...(opts.redirectUri ? { redirect_uri: opts.redirectUri } : {}), ...(opts.scope ? { scope: opts.scope } : {}) };
  const start = await browser.request(clientAuthorizeUrl(stack.gateway.publicUrl, clientId, extra), { headers });
  expect(start.location).toMatch(/\/login\?request=/);
  const page = await browser.request(start.location!, { headers });
  const skipped = page.status === 303 && page.location!.startsWith(`${stack.simulator.webOrigin}/login/oauth/authorize?`);
  const screen1 = page.status === 200 && loginForm(page.text) !== undefined;
  expect(skipped || screen1, `neither Screen 1 nor the upstream: HTTP ${page.status} ${page.location ?? ""}`).toBe(true);
  return { page, skipped, screen1 };
}

/** Show Screen 1 and approve it (signing in when asked), optionally ticking "Remember this client". */
async function approveOnScreen1(
  stack: Stack,
  browser: TestBrowser,
  clientId: string,
  opts: { redirectUri?: string; remember?: boolean; login?: typeof LOGIN; scope?: string } = {},
) {
  const { page, screen1 } = await authorizeOnce(stack, browser, clientId, opts);
  expect(screen1).toBe(true);
  const credentials = page.text.includes('name="password"') ? (opts.login ?? LOGIN) : {};
  const answer = await browser.request(`${stack.gateway.publicUrl}/login`, {
    form: { ...loginForm(page.text)!, ...credentials, ...(opts.remember ? { remember: "yes" } : {}), decision: "approve" },
  });
  expect(answer.status).toBe(303);
  expect(answer.location).toMatch(new RegExp(`^${stack.simulator.webOrigin}/login/oauth/authorize\\?`));
}

describe("consent", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ config: { registration: { unusedClientTtl: 31536000 } } });
  });
  afterAll(() => stack?.close());

  it("MC1 an attacker-registered client is shown the consent screen after a legitimate client was approved", async () => {
    const gw = stack.gateway.publicUrl;
    const browser = userStarted();
    const legit = await register(gw, { client_name: "Claude Desktop" });
    // the legitimate client, approved and remembered, then authorized again without Screen 1 all the way to a code
    const first = await browser.authorize(clientAuthorizeUrl(gw, legit.client_id), { redirectUri: REDIRECT_URI, ...LOGIN, remember: true });
    expect(first.searchParams.get("code")).toBeTruthy();
    expect((await authorizeOnce(stack, browser, legit.client_id)).skipped).toBe(true);

    // the attacker copies the name and the redirect URI; the upstream would approve its static client silently
    const attacker = await register(gw, { client_name: "Claude Desktop" });
    const { page, screen1 } = await authorizeOnce(stack, browser, attacker.client_id);
    expect(screen1).toBe(true);
    expect(page.location).toBeUndefined();
    expect(page.text).toContain(attacker.client_id);
    expect(page.text).toContain("127.0.0.1:33418");
    expect(page.text).toContain('name="remember" value="yes"');
    expect(page.text).not.toMatch(/name="remember"[^>]*checked/);
  });

  it("MC3 an XSS payload in client_name renders inert", async () => {
    const gw = stack.gateway.publicUrl;
    const payload = `<script>alert(1)</script><img src=x onerror=alert(2)>"'><svg onload=alert(3)>`;
    const { client_id } = await register(gw, { client_name: payload });
    const browser = new TestBrowser();
    const start = await browser.request(clientAuthorizeUrl(gw, client_id, { scope: "<img/src=x/onerror=alert(4)> read:user" }));
    const page = await browser.request(start.location!);
    expect(page.status).toBe(200);
    expect(page.text).not.toMatch(/<script|<img|<svg/i);
    expect(page.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#34;&#39;&gt;&lt;svg onload=alert(3)&gt;");
    expect(page.text).toContain("&lt;img/src=x/onerror=alert(4)&gt;");
    // and were anything to slip through, the policy runs no script and no inline style without the nonce
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toMatch(/^default-src 'none'; style-src 'nonce-[\w-]{22}'; /);
    expect(csp).not.toMatch(/script-src|unsafe-inline|unsafe-eval/);
    const nonce = /'nonce-([\w-]+)'/.exec(csp)![1];
    expect(page.text).toContain(`<style nonce="${nonce}">`);
  });

  it("WP3 a remembered approval is not honoured for a cross-site navigation", async () => {
    const gw = stack.gateway.publicUrl;
    const browser = userStarted();
    const { client_id } = await register(gw);
    await approveOnScreen1(stack, browser, client_id, { remember: true });

    // a page on another site (or a sibling subdomain) navigates the signed-in browser to /authorize
    for (const site of ["cross-site", "same-site"]) {
      const { screen1, page } = await authorizeOnce(stack, browser, client_id, { site });
      expect(screen1, site).toBe(true);
      expect(page.text).toContain(`Signed in as <strong>${LOGIN.username}</strong>`);
    }
    // a browser that does not say where the navigation came from is treated like a foreign page
    expect((await authorizeOnce(stack, new TestBrowser(), client_id)).screen1).toBe(true);
    // the user's own navigations, and the gateway's own pages, are honoured
    for (const site of ["none", "same-origin"]) expect((await authorizeOnce(stack, browser, client_id, { site })).skipped, site).toBe(true);
  });

  it("MC27 a remembered approval covers the scopes it was given for, and no more", async () => {
    const browser = userStarted();
    const { client_id } = await register(stack.gateway.publicUrl);
    await approveOnScreen1(stack, browser, client_id, { remember: true, scope: "read:user repo" });
    const shows = async (scope?: string) => (await authorizeOnce(stack, browser, client_id, scope ? { scope } : {})).screen1;

    expect(await shows("read:user repo")).toBe(false);
    expect(await shows("repo")).toBe(false);
    expect(await shows("repo admin:org delete_repo")).toBe(true);
    expect(await shows("read:user user")).toBe(true);
    // no scope asks for the upstream's default (no --upstream-scope here), which the approval never named
    expect(await shows()).toBe(true);
    // approving more without "remember" does not stretch the remembered approval
    await approveOnScreen1(stack, browser, client_id, { scope: "repo admin:org" });
    expect(await shows("repo admin:org")).toBe(true);
    expect(await shows("repo")).toBe(false);
  });

  it("MC31 bidirectional control characters in client_name never reach the page", async () => {
    const { page } = await openScreen1(stack.gateway.publicUrl, { metadata: { client_name: "Claude \u202Eresu:daer\u202C Desktop\u2066\u200F\u061C" } });
    expect(page.status).toBe(200);
    expect(page.text).toContain("Allow Claude resu:daer Desktop to use");
    expect(page.text).not.toMatch(/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/);
  });
});

describe("consent with several gateway users", () => {
  const ALICE = { username: "alice", password: "alice's long password" };
  const BOB = { username: "bob", password: "bob's long password" };
  const OTHER_URI = "http://127.0.0.1:33418/other";
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ users: [ALICE, BOB], config: { registration: { unusedClientTtl: 31536000 } } });
  });
  afterAll(() => stack?.close());

  it("MC2 a remembered approval covers only its user, client and redirect URI", async () => {
    const gw = stack.gateway.publicUrl;
    const alice = userStarted();
    const bob = userStarted();
    const client = await register(gw, { redirect_uris: [REDIRECT_URI, OTHER_URI] });
    const elsewhere = await register(gw);
    await approveOnScreen1(stack, alice, client.client_id, { remember: true, login: ALICE });

    expect((await authorizeOnce(stack, alice, client.client_id)).skipped).toBe(true);
    // another redirect URI of the same client, even the same loopback callback on another port
    expect((await authorizeOnce(stack, alice, client.client_id, { redirectUri: OTHER_URI })).screen1).toBe(true);
    expect((await authorizeOnce(stack, alice, client.client_id, { redirectUri: "http://127.0.0.1:40001/callback" })).screen1).toBe(true);
    // another gateway user, in another browser, signed in and authorizing the same client at the same URI
    await approveOnScreen1(stack, bob, elsewhere.client_id, { login: BOB });
    const asBob = await authorizeOnce(stack, bob, client.client_id);
    expect(asBob.screen1).toBe(true);
    expect(asBob.page.text).toContain("Signed in as <strong>bob</strong>");

    // 30 days: still remembered on day 29, forgotten after day 30 even though another approval was remembered since
    // (the session has expired by then, so the browser signs in again each time)
    stack.clock.advance(29 * DAY_MS);
    await approveOnScreen1(stack, alice, elsewhere.client_id, { login: ALICE, remember: true });
    expect((await authorizeOnce(stack, alice, client.client_id)).skipped).toBe(true);
    stack.clock.advance(1 * DAY_MS + 1000);
    await approveOnScreen1(stack, alice, elsewhere.client_id, { login: ALICE });
    expect((await authorizeOnce(stack, alice, client.client_id)).screen1).toBe(true);

    // at most APPROVALS_PER_USER per user: remembering one more forgets the oldest
    await approveOnScreen1(stack, alice, client.client_id, { remember: true });
    const later = [];
    for (let i = 0; i < APPROVALS_PER_USER; i++) {
      const { client_id } = await register(gw);
      await approveOnScreen1(stack, alice, client_id, { remember: true });
      later.push(client_id);
    }
    expect((await authorizeOnce(stack, alice, client.client_id)).screen1).toBe(true);
    expect((await authorizeOnce(stack, alice, later[0]!)).skipped).toBe(true);
    expect((await authorizeOnce(stack, alice, later.at(-1)!)).skipped).toBe(true);
  });
});

describe("consent for a Client ID Metadata Document", () => {
  let world: MetadataWorld;
  let docs: DocumentServer;
  let gateway: GatewayProcess;
  beforeAll(async () => {
    world = await startMetadataWorld();
    docs = world.docs;
    gateway = await world.startGateway();
  }, 30_000);
  afterAll(() => world?.close());

  /** Screen 1 for a document at `path` listing `redirectUris`. */
  async function screen1For(path: string, redirectUris: string[]) {
    const url = `${docs.origin}${path}`;
    docs.serve(path, { body: metadataDocument(url, { redirect_uris: redirectUris }) });
    const { page } = await openScreen1(gateway.url, { clientId: url, redirectUri: redirectUris[0]! });
    expect(page.status).toBe(200);
    return page.text;
  }
  const WARNING = "any program running on your computer can claim to be it";

  it("MC11 a metadata-document client whose redirect URIs are all loopback is shown with a warning", async () => {
    expect(await screen1For("/loopback.json", [REDIRECT_URI, "http://localhost:8787/callback"])).toContain(WARNING);
    // one redirect URI that is not loopback: codes can go where the document's host says
    expect(await screen1For("/mixed.json", ["https://client.example/cb", REDIRECT_URI])).not.toContain(WARNING);
    // a registered client is no document: it claims no address
    expect((await openScreen1(gateway.url)).page.text).not.toContain(WARNING);
  });
});
