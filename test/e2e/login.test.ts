import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TestBrowser, loginForm } from "../support/browser.js";
import { REDIRECT_URI, register, clientAuthorizeUrl } from "../support/manual.js";
import { LOGIN, startStack, type Stack } from "../support/stack.js";

/** Screen 1 and the upstream callback: the human step's checks (DESIGN §2, checklist D8, G2, G5). */
describe("the login and consent screen", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ args: ["--upstream-scope", "read:user"] });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  /** Register, open /authorize, and land on Screen 1. */
  async function screen1(metadata: Record<string, unknown> = {}, browser = new TestBrowser()) {
    const { client_id } = await register(gw, metadata);
    const start = await browser.request(clientAuthorizeUrl(gw, client_id));
    const page = await browser.request(start.location!);
    return { browser, page, form: loginForm(page.text)!, clientId: client_id };
  }

  it("names the client, its id, where it sends the user, and the scopes, with the fixed form fields", async () => {
    const { page, clientId } = await screen1({ client_name: "Acme Agent" });
    expect(page.status).toBe(200);
    for (const text of ["Acme Agent", clientId, "127.0.0.1:33418", "read:user"]) expect(page.text).toContain(text);
    expect(page.text).toMatch(/<form method="post"/);
    for (const field of ['name="username"', 'name="password"', 'name="decision" value="approve"', 'name="decision" value="deny"', 'name="csrf"'])
      expect(page.text).toContain(field);
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
  });

  it("renders a hostile client_name inert", async () => {
    const { page } = await screen1({ client_name: "<script>alert(1)</script><img src=x onerror=alert(2)>" });
    expect(page.text).not.toContain("<script>alert(1)");
    expect(page.text).not.toContain("<img src=x");
    expect(page.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("keeps the CSRF token across a reload of the page", async () => {
    const { browser, page, form } = await screen1();
    expect(page.status).toBe(200);
    const again = await browser.request(browser.visited.at(-1)!);
    expect(loginForm(again.text)!.csrf).toBe(form.csrf);
  });

  it("refuses a form posted without the CSRF token, or with another session's", async () => {
    const a = await screen1();
    const b = await screen1();
    const post = (browser: TestBrowser, form: Record<string, string>) => browser.request(`${gw}/login`, { form: { ...form, ...LOGIN, decision: "approve" } });
    const { csrf: _, ...withoutCsrf } = a.form;
    expect((await post(a.browser, withoutCsrf)).status).toBe(403);
    expect((await post(a.browser, { ...a.form, csrf: b.form.csrf! })).status).toBe(403);
    const ok = await post(a.browser, a.form);
    expect(ok.status).toBe(303);
  });

  it("refuses wrong credentials on the same page, with 401", async () => {
    const { browser, form } = await screen1();
    const answer = await browser.request(`${gw}/login`, { form: { ...form, username: LOGIN.username, password: "wrong", decision: "approve" } });
    expect(answer.status).toBe(401);
    expect(answer.text).toContain("Wrong username or password");
    expect(answer.location).toBeUndefined();
  });

  it("returns access_denied with state and iss when the user denies", async () => {
    const { browser, form } = await screen1();
    const answer = await browser.request(`${gw}/login`, { form: { ...form, decision: "deny" } });
    expect(answer.status).toBe(303);
    const back = new URL(answer.location!);
    expect(Object.fromEntries(back.searchParams)).toMatchObject({ error: "access_denied", state: "st", iss: gw });
  });

  it("sends the browser upstream with the gateway's own PKCE and state, and asks for the password only once", async () => {
    const { browser, form } = await screen1();
    const answer = await browser.request(`${gw}/login`, { form: { ...form, ...LOGIN, decision: "approve" } });
    const upstream = new URL(answer.location!);
    expect(upstream.origin).toBe(stack.simulator.webOrigin);
    expect(upstream.searchParams.get("client_id")).toBe(stack.app.clientId);
    expect(upstream.searchParams.get("redirect_uri")).toBe(`${gw}/upstream/callback`);
    expect(upstream.searchParams.get("code_challenge_method")).toBe("S256");
    expect(upstream.searchParams.get("code_challenge")).toMatch(/^[\w-]{43}$/);
    expect(upstream.searchParams.get("state")!.length).toBeGreaterThanOrEqual(43);
    expect(upstream.searchParams.get("scope")).toBe("read:user");

    const second = await screen1({}, browser);
    expect(second.page.text).not.toContain('name="password"');
    expect(second.page.text).toContain(`Signed in as <strong>${LOGIN.username}</strong>`);
  });

  it("refuses an upstream callback whose state belongs to another browser session", async () => {
    const { browser, form } = await screen1();
    const answer = await browser.request(`${gw}/login`, { form: { ...form, ...LOGIN, decision: "approve" } });
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
});

describe("upstream answers that end the sign-in", () => {
  let stack: Stack | undefined;
  afterEach(() => stack?.close());

  const walk = async (s: Stack) => {
    const gw = s.gateway.publicUrl;
    const { client_id } = await register(gw);
    const url = clientAuthorizeUrl(gw, client_id);
    const back = await new TestBrowser().authorize(url, { redirectUri: REDIRECT_URI, ...LOGIN });
    return Object.fromEntries(back.searchParams);
  };

  it("passes an upstream denial to the client as access_denied", async () => {
    stack = await startStack({ simulator: { consent: "auto-deny" } });
    expect(await walk(stack)).toMatchObject({ error: "access_denied", state: "st", iss: stack.gateway.publicUrl });
  });

  it("reports a failing upstream token endpoint as temporarily_unavailable, issuing no code", async () => {
    stack = await startStack({ simulator: { faults: { tokenEndpoint5xx: 1 } } });
    const answer = await walk(stack);
    expect(answer).toMatchObject({ error: "temporarily_unavailable", state: "st", iss: stack.gateway.publicUrl });
    expect(answer).not.toHaveProperty("code");
  });
});
