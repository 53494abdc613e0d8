import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TestBrowser, loginForm, returnLink } from "../support/browser.js";
import { REDIRECT_URI, clientAuthorizeUrl, openScreen1, redeem, register } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/**
 * Screen 1 and the upstream callback: the human step's contract (DESIGN §2, checklist D8, G2, G5). The
 * security controls (CSRF, state binding, escaping, cookies, throttling) are tested in test/security/.
 */
describe("the login and consent screen", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ server: { oauth: { scope: "read:user" } } });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  /** Register, open /authorize, and land on Screen 1. */
  const screen1 = (metadata: Record<string, unknown> = {}, browser = new TestBrowser()) => openScreen1(gw, { browser, metadata });

  it("names the client, its id, where it sends the user, and the scopes, with the fixed form fields", async () => {
    const { page, clientId } = await screen1({ client_name: "Acme Agent" });
    expect(page.status).toBe(200);
    for (const text of ["Acme Agent", clientId, "127.0.0.1:33418", "read:user"]) expect(page.text).toContain(text);
    expect(page.text).toMatch(/<form method="post"/);
    for (const field of [
      'name="username"',
      'name="password"',
      'name="decision" value="approve"',
      'name="decision" value="deny"',
      'name="csrf"',
      '<input type="checkbox" name="remember" value="yes">',
    ])
      expect(page.text).toContain(field);
    expect(page.text).toContain("Remember this client for 30 days");
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
  });

  it("keeps the CSRF token across a reload of the page", async () => {
    const { browser, page, form } = await screen1();
    expect(page.status).toBe(200);
    const again = await browser.request(browser.visited.at(-1)!);
    expect(loginForm(again.text)!.csrf).toBe(form.csrf);
  });

  it("refuses wrong credentials on the same page, with 401", async () => {
    const { browser, form } = await screen1();
    const answer = await browser.request(`${gw}/login`, { form: { ...form, username: LOGIN.username, password: "wrong", decision: "approve" } });
    expect(answer.status).toBe(401);
    expect(answer.text).toContain("Wrong username or password");
    expect(answer.location).toBeUndefined();
  });

  it("answers a denial with a page whose link returns access_denied with state and iss", async () => {
    const { browser, form } = await screen1();
    const answer = await browser.request(`${gw}/login`, { form: { ...form, decision: "deny" } });
    expect(answer.status).toBe(403);
    expect(answer.location).toBeUndefined();
    const back = returnLink(answer.text)!;
    expect(back.host).toBe("127.0.0.1:33418");
    expect(Object.fromEntries(back.url.searchParams)).toMatchObject({ error: "access_denied", state: "st", iss: gw });
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
});

describe("several gateway users from a users file", () => {
  const USERS = [
    { username: "alice", password: "alice's long password" },
    { username: "bob", password: "bob's long password" },
  ];
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ users: USERS });
  });
  afterAll(() => stack?.close());

  it("signs in each with their own password, and the grant belongs to the user who signed in", async () => {
    const gw = stack.gateway.publicUrl;
    const { client_id } = await register(gw);
    const { verifier, challenge } = pkce();
    const url = clientAuthorizeUrl(gw, client_id, { code_challenge: challenge });
    await expect(new TestBrowser().authorize(url, { redirectUri: REDIRECT_URI, username: "bob", password: USERS[0]!.password })).rejects.toThrow(/HTTP 401/);
    const back = await new TestBrowser().authorize(url, { redirectUri: REDIRECT_URI, ...USERS[1]! });
    const token = await redeem(gw, { clientId: client_id, code: back.searchParams.get("code")!, verifier });
    expect(token.status).toBe(200);
    const claims = JSON.parse(Buffer.from(token.body.access_token!.split("~")[0]!.split(".")[1]!, "base64url").toString());
    expect(claims.sub).toBe("bob");
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
