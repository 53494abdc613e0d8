import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RATE_RULES } from "../../src/ratelimit.js";
import { TestBrowser, loginForm, returnLink } from "../support/browser.js";
import { REDIRECT_URI, clientAuthorizeUrl, openScreen1, register } from "../support/oauth-steps.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md WP1, WP2, WP4–WP6, WP8, HI7, HI8: what a page in the user's browser can do to Screen 1 and the callback. */

/** Register a client (or take one), open /authorize in the browser, and land on Screen 1. */
async function screen1(base: string, browser = new TestBrowser(), clientId?: string) {
  const opened = await openScreen1(base, { browser, ...(clientId === undefined ? {} : { clientId }) });
  expect(opened.page.status).toBe(200);
  return opened;
}

const sessionCookie = (headers: Headers) => headers.getSetCookie().find((c) => /^(__Host-)?mcp-gateway=/.test(c));
const bindingCookie = (headers: Headers) => headers.getSetCookie().find((c) => /^(__Host-)?mcp-gateway-browser=/.test(c));
const cookieValue = (setCookie: string | undefined) => setCookie?.split(";")[0];

describe("login", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ server: { oauth: { scope: "read:user" } } });
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

    // a client not approved before hears a denial through the page's link only (RFC 9700 §4.11.2)
    const deny = await screen1(gw, browser, clientId);
    const back = await post(browser, { ...deny.form, ...crafted, decision: "deny" });
    expect(back.status).toBe(403);
    expect(back.location).toBeUndefined();
    expect(returnLink(back.text)!.url.href.startsWith(`${REDIRECT_URI}?`)).toBe(true);

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
    [http, https] = await Promise.all([startStack(), startStack({ config: { publicUrl: "https://gw.example" } })]);
  });
  afterAll(async () => {
    await http?.close();
    await https?.close();
  });

  it("WP5 session cookies are HttpOnly and SameSite, __Host- and Secure on https, and renewed at sign-in", async () => {
    /** /authorize, Screen 1, and the sign-in: the answers that set cookies. */
    const signIn = async (base: string) => {
      const browser = new TestBrowser();
      const { client_id } = await register(base);
      const start = await browser.request(clientAuthorizeUrl(base, client_id));
      const page = await browser.request(start.location!);
      const signedIn = await browser.request(`${base}/login`, { form: { ...loginForm(page.text)!, ...LOGIN, decision: "approve" } });
      expect(signedIn.status).toBe(303);
      return { clientId: client_id, start, page, signedIn };
    };
    const gw = http.gateway.publicUrl;
    const { clientId, start, page, signedIn } = await signIn(gw);
    // before sign-in nothing is stored: /authorize binds the browser with a cookie of its own (WP9), Screen 1 sets none
    expect(bindingCookie(start.headers)).toMatch(/^mcp-gateway-browser=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    expect(page.headers.getSetCookie()).toEqual([]);
    const session = sessionCookie(signedIn.headers)!;
    expect(session).toMatch(/^mcp-gateway=[^;]+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    // the session signs the browser in; the binding alone does not
    const fresh = await fetch(clientAuthorizeUrl(gw, clientId), { redirect: "manual" });
    const binding = cookieValue(bindingCookie(fresh.headers))!;
    const screen = (cookie: string) => fetch(new URL(fresh.headers.get("location")!, gw), { headers: { cookie } }).then((r) => r.text());
    expect(await screen(binding)).toContain('name="password"');
    expect(await screen(`${binding}; ${cookieValue(session)!}`)).toContain(`Signed in as <strong>${LOGIN.username}</strong>`);

    // behind a TLS proxy (public URL https), whatever the last hop's scheme
    const secure = await signIn(https.gateway.listenUrl);
    const cookies = [bindingCookie(secure.start.headers)!, sessionCookie(secure.signedIn.headers)!];
    expect(cookies[0]).toMatch(/^__Host-mcp-gateway-browser=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
    expect(cookies[1]).toMatch(/^__Host-mcp-gateway=[^;]+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
    for (const cookie of cookies) expect(cookie).not.toMatch(/Domain=/i);
  });
});

describe("login throttling", () => {
  const ALICE = { username: "alice", password: "alice's long password" };
  const BOB = { username: "bob", password: "bob's long password" };
  const ADMIN = { username: "admin", password: "the admin's long password" };
  let stack: Stack;
  let clientId: string;
  beforeAll(async () => {
    stack = await startStack({ users: [ALICE, BOB, ADMIN], config: { trustProxy: "loopback" } });
    clientId = (await register(stack.gateway.publicUrl)).client_id;
  });
  afterAll(() => stack?.close());

  /** A fresh browser opens Screen 1 (from `openedFrom`) and is ready to post the form from `address`. */
  async function prepare(address: string, openedFrom = address) {
    const { browser, form } = await screen1(stack.gateway.publicUrl, new TestBrowser({ "x-forwarded-for": openedFrom }), clientId);
    return (username: string, password: string) =>
      browser.request(`${stack.gateway.publicUrl}/login`, {
        form: { ...form, username, password, decision: "approve" },
        headers: { "x-forwarded-for": address },
      });
  }
  /** Sign-ins from one address, each through its own Screen 1. */
  const from = (address: string) => async (username: string, password: string) => (await prepare(address))(username, password);

  it("WP6 failed sign-ins are slowed per user and per address", async () => {
    const laptop = from("198.51.100.1");
    for (let i = 0; i < 3; i++) expect((await laptop("alice", "wrong")).status).toBe(401);
    const waiting = await laptop("alice", ALICE.password);
    expect(waiting.status).toBe(429);
    expect(waiting.headers.get("retry-after")).toBe("1");
    expect(waiting.headers.get("content-type")).toMatch(/^text\/html/);
    expect(waiting.text).toContain("Too many failed sign-ins for this user name from this address. Try again in 1 second.");
    expect(loginForm(waiting.text)).toBeDefined();
    expect((await laptop("bob", BOB.password)).status).toBe(303);

    const waits = [];
    for (let i = 0; i < 3; i++) {
      const refused = await laptop("alice", "wrong");
      expect(refused.status).toBe(429);
      waits.push(Number(refused.headers.get("retry-after")));
      stack.clock.advance(waits.at(-1)! * 1000);
      expect((await laptop("alice", "wrong")).status).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4]);
    stack.clock.advance(8_000);
    expect((await laptop("alice", ALICE.password)).status).toBe(303);
    // a success forgets this address's failures: one more is not a third
    expect((await laptop("alice", "wrong")).status).toBe(401);
    expect((await laptop("alice", ALICE.password)).status).toBe(303);

    // a burst of parallel guesses from one address is checked one at a time, so it cannot outrun the back-off
    const burst = await Promise.all(Array.from({ length: 6 }, () => prepare("198.51.100.2")));
    const statuses = await Promise.all(burst.map((send) => send("bob", "wrong")));
    expect(statuses.filter((s) => s.status === 401).length).toBeLessThanOrEqual(3);
    expect(statuses.every((s) => s.status === 401 || s.status === 429)).toBe(true);

    // per address: 10 failures (any user names) from one address, then even the right password waits for the window's end
    for (let i = 0; i < 10; i++) expect((await from("192.0.2.1")(`nobody-${i}`, "wrong")).status).toBe(401);
    const refused = await from("192.0.2.1")("bob", BOB.password);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(900);
    expect(refused.text).toMatch(/Too many failed sign-ins from this address\. Try again in \d+ (minutes|seconds?)\./);
    expect((await from("192.0.2.2")("bob", BOB.password)).status).toBe(303);
  });

  it("HI7 the real user signs in from a clean address while another address keeps guessing for that name", async () => {
    /** Guess wrong from `address` until the name has 6 failures, waiting out each back-off: [status, Retry-After] of each answer. */
    const keepGuessing = async (name: string, address: string) => {
      const seen: [number, string | null][] = [];
      while (seen.filter(([status]) => status === 401).length < 6) {
        const answer = await from(address)(name, "wrong");
        seen.push([answer.status, answer.headers.get("retry-after")]);
        if (answer.status === 429) stack.clock.advance(Number(answer.headers.get("retry-after")) * 1000);
      }
      return seen;
    };
    const attacker = from("198.51.100.66");
    const guessed = await keepGuessing("admin", "198.51.100.66");
    expect(guessed).toEqual([
      [401, null],
      [401, null],
      [401, null],
      [429, "1"],
      [401, null],
      [429, "2"],
      [401, null],
      [429, "4"],
      [401, null],
    ]);
    const held = await attacker("admin", ADMIN.password);
    expect(held.status).toBe(429);
    expect(held.headers.get("retry-after")).toBe("8");

    expect((await from("203.0.113.10")("admin", ADMIN.password)).status).toBe(303);
    // the admin's sign-in does not reset the back-off the attacker meets
    expect((await attacker("admin", "wrong")).status).toBe(429);
    // another address meets its own back-off, not the first one's: three failures, then 1 s
    const second = from("198.51.100.67");
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await second("admin", "wrong")).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // an unknown user name meets exactly the same answers
    expect(await keepGuessing("no-such-admin", "192.0.2.66")).toEqual(guessed);
  });

  it("HI8 of 40 parallel wrong sign-ins with distinct names from one address, at most 10 passwords are checked", async () => {
    const forms = await Promise.all(Array.from({ length: 40 }, (_, i) => prepare("192.0.2.40", `198.51.100.${100 + i}`)));
    const answers = await Promise.all(forms.map((send, i) => send(`guess-${i}`, "wrong")));
    const statuses = answers.map((a) => a.status);
    // a 401 is a password checked; a 429 was refused before its check
    expect(statuses.filter((s) => s === 401)).toHaveLength(RATE_RULES.loginFailure.limit);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40 - RATE_RULES.loginFailure.limit);
    for (const refused of answers.filter((a) => a.status === 429)) expect(refused.text).toContain("Too many failed sign-ins from this address.");
  });
});
