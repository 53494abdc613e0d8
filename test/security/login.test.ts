import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestBrowser, loginForm } from "../support/browser.js";
import { REDIRECT_URI, clientAuthorizeUrl, openScreen1, register } from "../support/manual.js";
import { LOGIN, startStack, type Stack } from "../support/stack.js";

/** docs/security.md WP1, WP2, WP4–WP6, WP8: what a page in the user's browser can do to Screen 1 and the callback. */

/** Register a client (or take one), open /authorize in the browser, and land on Screen 1. */
async function screen1(base: string, browser = new TestBrowser(), clientId?: string) {
  const opened = await openScreen1(base, { browser, ...(clientId === undefined ? {} : { clientId }) });
  expect(opened.page.status).toBe(200);
  return opened;
}

const sessionCookie = (headers: Headers) => headers.getSetCookie().find((c) => /^(__Host-)?mcp-gateway=/.test(c));
const cookieValue = (setCookie: string | undefined) => setCookie?.split(";")[0];

describe("login", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ args: ["--upstream-scope", "read:user"] });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const post = (browser: TestBrowser, form: Record<string, string>) => browser.request(`${gw}/login`, { form });

  it("WP1 a login form posted without or with another session's CSRF token is refused", async () => {
    const a = await screen1(gw);
    const b = await screen1(gw);
    const { csrf: _, ...withoutCsrf } = a.form;
    const refusals = [
      await post(a.browser, { ...withoutCsrf, ...LOGIN, decision: "approve" }),
      await post(a.browser, { ...a.form, csrf: b.form.csrf!, ...LOGIN, decision: "approve" }),
      // the token belongs to one authorization request, not to the whole session
      await post(a.browser, { ...a.form, request: (await screen1(gw, a.browser)).form.request!, csrf: a.form.csrf!, ...LOGIN, decision: "approve" }),
      // a cross-site form post carries no SameSite=Lax cookie: no session, no token
      await post(new TestBrowser(), { ...a.form, ...LOGIN, decision: "approve" }),
      // nor can the page decide "deny" for the user
      await post(a.browser, { ...withoutCsrf, decision: "deny" }),
    ];
    for (const refused of refusals) {
      expect(refused.status).toBe(403);
      expect(refused.location).toBeUndefined();
      expect(refused.text).toContain("access_denied");
    }
    const ok = await post(a.browser, { ...a.form, ...LOGIN, decision: "approve" });
    expect(ok.status).toBe(303);
    expect(ok.location).toMatch(new RegExp(`^${stack.simulator.webOrigin}/login/oauth/authorize\\?`));
  });

  it("WP2 an upstream callback whose state belongs to another browser session is refused", async () => {
    const { browser, form } = await screen1(gw);
    const answer = await post(browser, { ...form, ...LOGIN, decision: "approve" });
    const atUpstream = await browser.request(answer.location!);
    const callback = atUpstream.location!;
    expect(callback).toContain("/upstream/callback");
    const stranger = new TestBrowser();
    const refused = await stranger.request(callback);
    expect(refused.status).toBe(403);
    expect(refused.location).toBeUndefined();
    // single use: the state is gone for its owner too
    expect((await browser.request(callback)).status).toBe(400);
  });

  it("WP4 every page forbids framing and runs no script", async () => {
    const { browser, page, form } = await screen1(gw);
    const pages = {
      "Screen 1": page,
      "wrong password": await post(browser, { ...form, username: LOGIN.username, password: "wrong", decision: "approve" }),
      "stale form": await post(browser, { ...form, csrf: "forged", decision: "approve" }),
      "unknown client at /authorize": await browser.request(`${gw}/authorize?client_id=nobody&response_type=code`),
      "expired sign-in": await browser.request(`${gw}/login?request=unknown`),
      "forged upstream callback": await browser.request(`${gw}/upstream/callback?state=forged&code=x`),
    };
    expect(Object.fromEntries(Object.entries(pages).map(([name, p]) => [name, p.status]))).toEqual({
      "Screen 1": 200,
      "wrong password": 401,
      "stale form": 403,
      "unknown client at /authorize": 400,
      "expired sign-in": 400,
      "forged upstream callback": 400,
    });
    const nonces = new Set<string>();
    for (const [name, p] of Object.entries(pages)) {
      const csp = p.headers.get("content-security-policy") ?? "";
      expect(p.headers.get("content-type"), name).toMatch(/^text\/html/);
      expect(csp, name).toMatch(/^default-src 'none'; style-src 'nonce-[\w-]{22}'; frame-ancestors 'none'; base-uri 'none'$/);
      expect(p.headers.get("x-frame-options"), name).toBe("DENY");
      expect(p.text, name).not.toMatch(/<script|\son\w+=/i);
      nonces.add(/'nonce-([\w-]+)'/.exec(csp)![1]!);
    }
    expect(nonces.size).toBe(Object.keys(pages).length);
  });

  it("WP8 the gateway redirects only to verified client redirect URIs and the upstream", async () => {
    const evil = "https://evil.example/steal";
    const crafted = { next: evil, redirect_uri: evil, redirect: evil, return_to: evil, continue: evil };
    const { browser, form, clientId } = await screen1(gw);
    const shown = await browser.request(`${gw}/login?${new URLSearchParams({ request: form.request!, ...crafted }).toString()}`);
    expect(shown.status).toBe(200);
    expect(shown.location).toBeUndefined();

    const deny = await screen1(gw, browser, clientId);
    const back = await post(browser, { ...deny.form, ...crafted, decision: "deny" });
    expect(back.status).toBe(303);
    expect(back.location!.startsWith(`${REDIRECT_URI}?`)).toBe(true);

    const approved = await post(browser, { ...form, ...LOGIN, ...crafted, decision: "approve" });
    const upstream = new URL(approved.location!);
    expect(`${upstream.origin}${upstream.pathname}`).toBe(`${stack.simulator.webOrigin}/login/oauth/authorize`);
    expect(upstream.searchParams.get("redirect_uri")).toBe(`${gw}/upstream/callback`);
    const atUpstream = await browser.request(approved.location!);
    const callback = new URL(atUpstream.location!);
    expect(`${callback.origin}${callback.pathname}`).toBe(`${gw}/upstream/callback`);
    for (const [k, v] of Object.entries(crafted)) callback.searchParams.append(k, v);
    const toClient = await browser.request(callback.href);
    expect(toClient.status).toBe(302);
    expect(toClient.location!.startsWith(`${REDIRECT_URI}?`)).toBe(true);
    expect(new URL(toClient.location!).searchParams.get("code")).toBeTruthy();

    // RFC 9700 §2.6: no CORS on the authorization endpoint, preflight or not
    const preflight = await fetch(`${gw}/authorize`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    const simple = await fetch(clientAuthorizeUrl(gw, clientId), { headers: { origin: "https://evil.example" }, redirect: "manual" });
    expect(simple.status).toBe(302);
    expect(simple.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("login cookies", () => {
  let http: Stack;
  let https: Stack;
  beforeAll(async () => {
    [http, https] = await Promise.all([startStack(), startStack({ args: ["--public-url", "https://gw.example"] })]);
  });
  afterAll(async () => {
    await http?.close();
    await https?.close();
  });

  it("WP5 session cookies are HttpOnly and SameSite, __Host- and Secure on https, and renewed at sign-in", async () => {
    const gw = http.gateway.publicUrl;
    const { browser, page, form, clientId } = await screen1(gw);
    const before = sessionCookie(page.headers)!;
    expect(before).toMatch(/^mcp-gateway=[^;]+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/);

    const signedIn = await browser.request(`${gw}/login`, { form: { ...form, ...LOGIN, decision: "approve" } });
    expect(signedIn.status).toBe(303);
    const after = sessionCookie(signedIn.headers)!;
    expect(after).toMatch(/; HttpOnly; SameSite=Lax$/);
    expect(cookieValue(after)).not.toBe(cookieValue(before));
    // the id from before sign-in is not signed in (session fixation), the new one is
    const fresh = await fetch(clientAuthorizeUrl(gw, clientId), { redirect: "manual" });
    const screen = (cookie: string) => fetch(new URL(fresh.headers.get("location")!, gw), { headers: { cookie } }).then((r) => r.text());
    expect(await screen(cookieValue(before)!)).toContain('name="password"');
    expect(await screen(cookieValue(after)!)).toContain(`Signed in as <strong>${LOGIN.username}</strong>`);

    // behind a TLS proxy (public URL https), whatever the last hop's scheme
    const base = https.gateway.listenUrl;
    const secure = sessionCookie((await screen1(base)).page.headers)!;
    expect(secure).toMatch(/^__Host-mcp-gateway=[^;]+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
    expect(secure).not.toMatch(/Domain=/i);
  });
});

describe("login throttling", () => {
  const ALICE = { username: "alice", password: "alice's long password" };
  const BOB = { username: "bob", password: "bob's long password" };
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ users: [ALICE, BOB], args: ["--trust-proxy", "loopback"] });
  });
  afterAll(() => stack?.close());

  /** A fresh browser at `address` opens Screen 1 and signs in; the form is ready before the post. */
  async function prepare(clientId: string, address: string) {
    const { browser, form } = await screen1(stack.gateway.publicUrl, new TestBrowser({ "x-forwarded-for": address }), clientId);
    return (username: string, password: string) =>
      browser.request(`${stack.gateway.publicUrl}/login`, { form: { ...form, username, password, decision: "approve" } });
  }
  const attempt = async (clientId: string, address: string, username: string, password: string) => (await prepare(clientId, address))(username, password);

  it("WP6 failed sign-ins are slowed per user and per address", async () => {
    const { client_id } = await register(stack.gateway.publicUrl);
    let n = 0;
    /** Every guess from another address: the per-user back-off holds whatever the address. */
    const guess = (username: string, password: string) => attempt(client_id, `198.51.100.${++n}`, username, password);

    for (let i = 0; i < 3; i++) expect((await guess("alice", "wrong")).status).toBe(401);
    const waiting = await guess("alice", ALICE.password);
    expect(waiting.status).toBe(429);
    expect(waiting.headers.get("retry-after")).toBe("1");
    expect(waiting.headers.get("content-type")).toMatch(/^text\/html/);
    expect(waiting.text).toContain("Too many failed sign-ins for this user name. Try again in 1 second.");
    expect(loginForm(waiting.text)).toBeDefined();
    expect((await guess("bob", BOB.password)).status).toBe(303);

    const waits = [];
    for (let i = 0; i < 11; i++) {
      const refused = await guess("alice", "wrong");
      expect(refused.status).toBe(429);
      waits.push(Number(refused.headers.get("retry-after")));
      stack.clock.advance(waits.at(-1)! * 1000);
      expect((await guess("alice", "wrong")).status).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
    stack.clock.advance(900_000);
    expect((await guess("alice", ALICE.password)).status).toBe(303);
    // a success clears the count: one more failure is not a third
    expect((await guess("alice", "wrong")).status).toBe(401);
    expect((await guess("alice", ALICE.password)).status).toBe(303);

    // a burst of parallel guesses for one user is checked one at a time, so it cannot outrun the back-off
    const burst = await Promise.all(Array.from({ length: 6 }, () => prepare(client_id, `198.51.100.${++n}`)));
    const statuses = await Promise.all(burst.map((send) => send("bob", "wrong")));
    expect(statuses.filter((s) => s.status === 401).length).toBeLessThanOrEqual(3);
    expect(statuses.every((s) => s.status === 401 || s.status === 429)).toBe(true);
    stack.clock.advance(900_000);

    // per address: 10 failures (any user names) from one address, then even the right password waits
    for (let i = 0; i < 10; i++) expect((await attempt(client_id, "192.0.2.1", `nobody-${i}`, "wrong")).status).toBe(401);
    const refused = await attempt(client_id, "192.0.2.1", "bob", BOB.password);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("900");
    expect(refused.text).toContain("Too many failed sign-ins from this address. Try again in 15 minutes.");
    expect((await attempt(client_id, "192.0.2.2", "bob", BOB.password)).status).toBe(303);
  });
});
