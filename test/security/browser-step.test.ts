import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTHORIZATION_REQUEST_LIMITS } from "../../src/as/authorize.js";
import type { Store } from "../../src/store/store.js";
import { TestBrowser, loginForm, returnLink } from "../support/browser.js";
import { REDIRECT_URI, clientAuthorizeUrl, obtainCode, openScreen1, register } from "../support/oauth-steps.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md WP9, MC25, HI5, MC34: what an attacker without credentials can do to /authorize and Screen 1. */

let stack: Stack;
let gw: string;
let host: string;
beforeAll(async () => {
  stack = await startStack({ config: { trustProxy: "loopback" }, server: { oauth: { scope: "read:user", scopeMax: "read:user repo" } } });
  gw = stack.gateway.publicUrl;
  host = new URL(gw).host;
});
afterAll(() => stack?.close());

let lastAddress = 0;
/** A browser at an address of its own (through --trust-proxy), so the per-address limits of one test do not reach another's. */
const browserElsewhere = (headers: Record<string, string> = {}) => new TestBrowser({ "x-forwarded-for": `198.18.200.${++lastAddress}`, ...headers });

async function count(store: Store, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of store.scan(prefix)) n++;
  return n;
}

const atUpstream = (location: string | undefined) => location?.startsWith(`${stack.simulator.webOrigin}/login/oauth/authorize?`) === true;

describe("the browser step", () => {
  it("WP9 an attacker's planted cookies and its own request's CSRF token get no code once the victim signs in", async () => {
    // the attacker starts a request of its own client and keeps Screen 1's form with its CSRF token
    const attacker = browserElsewhere();
    const evil = await register(gw, { client_name: "Evil" });
    const forged = await openScreen1(gw, { browser: attacker, clientId: evil.client_id });
    expect(forged.form.csrf).toBeTruthy();
    // a page on another localhost port plants every cookie the attacker holds for the gateway in the victim's browser
    const victim = browserElsewhere();
    victim.plant(host, attacker.cookies(host));
    expect(Object.keys(victim.cookies(host))).not.toEqual([]);

    // the victim opens Screen 1 for two requests of its own client, then signs in on the first
    const legit = await register(gw, { client_name: "Claude Desktop" });
    const first = await openScreen1(gw, { browser: victim, clientId: legit.client_id });
    const second = await openScreen1(gw, { browser: victim, clientId: legit.client_id });
    const signedIn = await victim.request(`${gw}/login`, { form: { ...first.form, ...LOGIN, decision: "approve" } });
    expect(signedIn.status).toBe(303);
    expect(atUpstream(signedIn.location)).toBe(true);

    // the attacker's same-site page posts its own pending request with its own token through the victim's browser
    const posted = await victim.request(`${gw}/login`, { form: { ...forged.form, decision: "approve" } });
    expect(posted.status).toBe(403);
    expect(posted.location).toBeUndefined();
    expect(posted.text).toContain("The form is stale");
    // nothing issued before the sign-in survives it, the victim's own second form included: a reload gives a new token
    expect((await victim.request(`${gw}/login`, { form: { ...second.form, decision: "approve" } })).status).toBe(403);
    const reloaded = loginForm((await victim.request(victim.visited.find((u) => u.includes(second.form.request!))!)).text)!;
    expect(reloaded.csrf).not.toBe(second.form.csrf);
    expect(atUpstream((await victim.request(`${gw}/login`, { form: { ...reloaded, decision: "approve" } })).location)).toBe(true);

    // and the attacker's request is its own browser's only: another browser cannot even open it
    const elsewhere = await browserElsewhere().request(`${gw}/login?request=${forged.form.request!}`);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.text).toContain("started in another browser");
  });

  it("WP9 a sign-in form posted from another port of the host (same-site, not same-origin) is refused, whatever it carries", async () => {
    // the attacker holds a request of its own client and Screen 1's CSRF token for it, and plants its binding cookie
    const attacker = browserElsewhere();
    const evil = await register(gw, { client_name: "Evil" });
    const forged = await openScreen1(gw, { browser: attacker, clientId: evil.client_id });
    const victim = browserElsewhere();
    victim.plant(host, attacker.cookies(host));
    // its page on http://127.0.0.1:9999 auto-posts the form, signing the victim's browser in as the attacker
    const sameSite = { origin: "http://127.0.0.1:9999", "sec-fetch-site": "same-site" };
    const forgeries: Record<string, string>[] = [
      sameSite,
      { "sec-fetch-site": "same-site" },
      { origin: "http://127.0.0.1:9999" },
      { origin: "null" },
      { origin: new URL(gw).origin, "sec-fetch-site": "cross-site" },
    ];
    for (const headers of forgeries) {
      const posted = await victim.request(`${gw}/login`, { form: { ...forged.form, ...LOGIN, decision: "approve" }, headers });
      expect([posted.status, posted.location]).toEqual([403, undefined]);
      expect(posted.text).toContain("sent from another site");
    }
    // the gateway's own page posts same-origin, and goes on
    const own = { origin: new URL(gw).origin, "sec-fetch-site": "same-origin" };
    const posted = await attacker.request(`${gw}/login`, { form: { ...forged.form, ...LOGIN, decision: "approve" }, headers: own });
    expect(atUpstream(posted.location)).toBe(true);
  });

  it("MC25 an error or a denial for a client not approved before is a page with a link, never a redirect", async () => {
    const phish = "https://evil.example/phish";
    const { client_id } = await register(gw, { redirect_uris: [phish], client_name: "Phish" });
    const browser = browserElsewhere();
    const sessionsBefore = await count(stack.gateway.store, "sess:");

    // response_type=token would have bounced the victim straight to the phishing page
    const page = await browser.request(clientAuthorizeUrl(gw, client_id, { redirect_uri: phish, response_type: "token" }));
    expect(page.status).toBe(400);
    expect(page.location).toBeUndefined();
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const link = returnLink(page.text)!;
    expect(link.host).toBe("evil.example");
    expect(link.url.href.startsWith(`${phish}?`)).toBe(true);
    expect(Object.fromEntries(link.url.searchParams)).toMatchObject({ error: "unsupported_response_type", state: "st", iss: gw });

    // Deny, before any approval: the page again (403)
    const screen = await openScreen1(gw, { browser, clientId: client_id, redirectUri: phish });
    const denied = await browser.request(`${gw}/login`, { form: { ...screen.form, decision: "deny" } });
    expect(denied.status).toBe(403);
    expect(denied.location).toBeUndefined();
    expect(returnLink(denied.text)!.url.searchParams.get("error")).toBe("access_denied");
    // /authorize read the session cookie only: no session was made for these browsers
    expect(await count(stack.gateway.store, "sess:")).toBe(sessionsBefore);

    // once this browser's user approved the client (without "remember"), its errors and denials go back by redirect
    const approved = browserElsewhere({ "sec-fetch-site": "none" });
    const client = await register(gw);
    expect((await obtainCode(gw, { clientId: client.client_id, browser: approved })).code).toBeTruthy();
    const error = await approved.request(clientAuthorizeUrl(gw, client.client_id, { response_type: "token" }));
    expect(error.status).toBe(302);
    expect(new URL(error.location!).searchParams.get("error")).toBe("unsupported_response_type");
    const again = await openScreen1(gw, { browser: approved, clientId: client.client_id });
    // not remembered, so Screen 1 still shows, even for a navigation the user started
    expect(again.page.status).toBe(200);
    const redirected = await approved.request(`${gw}/login`, { form: { ...again.form, decision: "deny" } });
    expect(redirected.status).toBe(303);
    expect(redirected.location!.startsWith(`${REDIRECT_URI}?error=access_denied`)).toBe(true);
    // another browser, not signed in, still gets the page for the same client
    expect((await browserElsewhere().request(clientAuthorizeUrl(gw, client.client_id, { response_type: "token" }))).status).toBe(400);
  });

  it("HI5 an oversized state or scope stores nothing, and cookieless Screen 1 loads create no session", async () => {
    const store = stack.gateway.store;
    const { client_id } = await register(gw);
    const requestsBefore = await count(store, "authreq:");

    const oversized: Record<string, string>[] = [
      { state: "s".repeat(15 * 1024) },
      { state: "é".repeat(AUTHORIZATION_REQUEST_LIMITS.state / 2 + 1) },
      { scope: "read:user ".repeat(200).trim() },
    ];
    for (const extra of oversized) {
      const page = await browserElsewhere().request(clientAuthorizeUrl(gw, client_id, extra));
      expect(page.status).toBe(400);
      const link = returnLink(page.text)!.url;
      expect(link.searchParams.get("error")).toBe(extra.scope ? "invalid_scope" : "invalid_request");
      // an oversized state is not sent back either
      expect(link.href.length).toBeLessThan(500);
    }
    expect(await count(store, "authreq:")).toBe(requestsBefore);
    const atLimit = await browserElsewhere().request(clientAuthorizeUrl(gw, client_id, { state: "s".repeat(AUTHORIZATION_REQUEST_LIMITS.state) }));
    expect(atLimit.location).toMatch(new RegExp(`^${gw}/login\\?request=`));

    // 1,000 cookieless loads of Screen 1 for a live request, each from an address of its own: none is shown, none stores a session
    const request = new URL(atLimit.location!, gw).searchParams.get("request")!;
    const sessionsBefore = await count(store, "sess:");
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          fetch(`${gw}/login?request=${request}`, { headers: { "x-forwarded-for": `198.19.${batch}.${i + 1}` } }).then(async (r) => {
            await r.arrayBuffer();
            return r;
          }),
        ),
      );
      for (const r of answers) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(answers.every((r) => r.headers.getSetCookie().length === 0)).toBe(true);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 403: 1000 });
    // Screen 1 itself, shown to the browser that started the request, stores nothing either
    const shown = await openScreen1(gw, { browser: browserElsewhere(), clientId: client_id });
    expect(shown.page.status).toBe(200);
    expect(shown.page.headers.getSetCookie()).toEqual([]);
    expect(await count(store, "sess:")).toBe(sessionsBefore);
  });

  it("HI5 /authorize and /login are rate-limited per address, with a 429 page and Retry-After", async () => {
    const { client_id } = await register(gw);
    const browser = browserElsewhere();
    const url = clientAuthorizeUrl(gw, client_id);
    for (let i = 0; i < 59; i++) await browser.request(url);
    const start = await browser.request(url);
    expect(start.status).toBe(302);
    const over = await browser.request(url);
    expect(over.status).toBe(429);
    expect(over.headers.get("retry-after")).toBe("600");
    expect(over.headers.get("content-type")).toMatch(/^text\/html/);
    expect(over.text).toContain("Too many sign-ins started from this address");

    const screen = start.location!;
    for (let i = 0; i < 120; i++) expect((await browser.request(screen)).status).toBe(200);
    const tooMany = await browser.request(screen);
    expect(tooMany.status).toBe(429);
    expect(tooMany.headers.get("retry-after")).toBe("600");
    expect(tooMany.text).toContain("Too many sign-in pages from this address");
    // another address is not held up
    expect((await openScreen1(gw, { browser: browserElsewhere(), clientId: client_id })).page.status).toBe(200);
  });

  it("MC34 a scope outside --upstream-scope-max is invalid_scope, through the same error path", async () => {
    const { client_id } = await register(gw);
    const ask = (scope?: string) => browserElsewhere().request(clientAuthorizeUrl(gw, client_id, scope === undefined ? {} : { scope }));
    for (const scope of [undefined, "read:user", "repo", "read:user repo"])
      expect((await ask(scope)).location, scope).toMatch(new RegExp(`^${gw}/login\\?request=`));
    for (const scope of ["admin:org", "repo admin:org delete_repo", "read:user user"]) {
      const page = await ask(scope);
      expect(page.status, scope).toBe(400);
      expect(returnLink(page.text)!.url.searchParams.get("error")).toBe("invalid_scope");
      expect(page.text).toContain("This gateway does not let clients ask for");
    }
  });
});
