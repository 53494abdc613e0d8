import type { Page } from "playwright-core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chromiumSession } from "../support/chromium-session.js";
import { callGetMe } from "../support/connect.js";
import { authorizationRequest, redeem, REDIRECT_URI, register } from "../support/oauth-steps.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

const SCOPES = "repo read:user";

/** Screen 1 and the upstream's page in headless Chromium, clicked through like a person would. */
describe("a real browser (Chromium) on the login and consent screens", () => {
  const chromium = chromiumSession();
  const { problems } = chromium;
  let stack: Stack;
  let gw: string;

  beforeEach(async () => {
    stack = await startStack({ simulator: { consent: "page" } });
    gw = stack.gateway.publicUrl;
  });
  afterEach(() => stack?.close());

  const openPage = (): Promise<Page> => chromium.openPage(stack.simulator.webOrigin);

  /** A fresh authorization request (state, PKCE S256) of `clientId`, or of a newly registered client. */
  async function authorization(clientId?: string) {
    clientId ??= (await register(gw, { client_name: "Acme Agent" })).client_id;
    return { clientId, ...authorizationRequest(gw, clientId, { scope: SCOPES, resource: stack.mcpUrl }) };
  }

  /** Open a new client's authorization request and land on Screen 1. */
  async function screen1(page: Page) {
    const request = await authorization();
    await page.goto(request.url);
    expect(page.url()).toMatch(new RegExp(`^${gw}/login\\?`));
    return request;
  }

  /**
   * Resolves with the URL the client receives. Nobody listens at REDIRECT_URI (and Playwright routes
   * no redirects), so the request is the answer; the browser then shows its connection-refused page.
   */
  const backAtClient = (page: Page) => page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI)).then((r) => new URL(r.url()));
  const refusedAtClient = (error: Error) => expect(error.message).toMatch(/ERR_CONNECTION_REFUSED/);

  /** Sign in and approve on Screen 1, then authorize on the upstream's page: the URL the client receives. */
  async function approveBothScreens(page: Page, opts: { remember?: boolean } = {}): Promise<URL> {
    await page.getByLabel("Gateway username").fill(LOGIN.username);
    await page.getByLabel("Gateway password").fill(LOGIN.password);
    if (opts.remember) await page.getByLabel("Remember this client").check();
    await page.getByRole("button", { name: "Approve" }).click();
    await page.waitForURL((url) => url.href.startsWith(`${stack.simulator.webOrigin}/login/oauth/authorize`));
    expect(await page.locator("h2").innerText()).toMatch(/^Authorize /);
    const landed = backAtClient(page);
    await page.getByRole("button", { name: "Authorize" }).click();
    return landed;
  }

  it("approves: Screen 1, then the upstream's page, then a code that buys a working token", async () => {
    const page = await openPage();
    const { clientId, verifier, state } = await screen1(page);
    expect(await page.locator("h1").innerText()).toContain("Acme Agent");
    const shown = await page.locator("dd code").allInnerTexts();
    for (const text of [clientId, "127.0.0.1:33418", ...SCOPES.split(" ")]) expect(shown).toContain(text);

    const callback = await approveBothScreens(page);

    expect(callback.searchParams.get("state")).toBe(state);
    expect(callback.searchParams.get("iss")).toBe(gw);
    const code = callback.searchParams.get("code");
    expect(code).toBeTruthy();
    const token = await redeem(gw, { clientId, code: code!, verifier });
    expect(token.status).toBe(200);
    expect((await callGetMe(gw, token.body.access_token!)).login).toBe(stack.simulator.users[0]!.login);
    expect(problems).toEqual([]);
  });

  it("denies: a page links the new client to access_denied with its state, and the upstream is never asked", async () => {
    const page = await openPage();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    const { state } = await screen1(page);
    const answered = page.waitForResponse((r) => r.request().method() === "POST");
    await page.getByRole("button", { name: "Deny" }).click();
    // RFC 9700 §4.11.2: a client not approved before is not sent to on its own
    expect((await answered).status()).toBe(403);
    await page.getByRole("heading", { name: "You denied the request" }).waitFor();
    expect(await page.locator("main").innerText()).toContain("127.0.0.1:33418");
    expect(requests.filter((u) => u.startsWith(REDIRECT_URI))).toEqual([]);
    const landed = backAtClient(page);
    await page.getByRole("link", { name: "Return to your MCP client" }).click().catch(refusedAtClient);
    const callback = await landed;

    expect(callback.searchParams.get("error")).toBe("access_denied");
    expect(callback.searchParams.get("state")).toBe(state);
    expect(callback.searchParams.get("iss")).toBe(gw);
    expect(requests.filter((u) => u.startsWith(stack.simulator.webOrigin))).toEqual([]);
    // Chromium reports the 403 document itself; nothing else
    expect(problems).toEqual([`${gw}/login: Failed to load resource: the server responded with a status of 403 (Forbidden)`]);
  });

  it("refuses the form with 403 when the CSRF field is removed, and goes nowhere", async () => {
    const page = await openPage();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    await screen1(page);
    await page.locator('input[name="csrf"]').evaluate((input) => input.remove());
    expect(await page.locator('input[name="csrf"]').count()).toBe(0);

    await page.getByLabel("Gateway username").fill(LOGIN.username);
    await page.getByLabel("Gateway password").fill(LOGIN.password);
    const refused = page.waitForResponse((r) => r.request().method() === "POST");
    await page.getByRole("button", { name: "Approve" }).click();
    const answer = await refused;
    await page.getByRole("heading", { name: "This sign-in cannot continue" }).waitFor();

    expect(answer.url()).toBe(`${gw}/login`);
    expect(answer.status()).toBe(403);
    expect(await page.locator("main").innerText()).toContain("access_denied");
    expect(requests.filter((u) => u.startsWith(stack.simulator.webOrigin) || u.startsWith(REDIRECT_URI))).toEqual([]);
    // Chromium reports the 403 document itself; nothing else
    expect(problems).toEqual([`${gw}/login: Failed to load resource: the server responded with a status of 403 (Forbidden)`]);
  });

  it("remembers an approval when asked: a navigation the user started skips Screen 1, a link on another site does not", async () => {
    const page = await openPage();
    const first = await screen1(page);
    expect((await approveBothScreens(page, { remember: true })).searchParams.get("code")).toBeTruthy();

    // typed or opened by the MCP client (Sec-Fetch-Site: none): straight to the upstream
    const again = await authorization(first.clientId);
    const skipped = page.waitForResponse((r) => r.url().startsWith(`${gw}/login?`));
    const landed = backAtClient(page);
    await page.goto(again.url).catch(refusedAtClient);
    expect((await skipped).status()).toBe(303);
    expect(await (await skipped).headerValue("location")).toMatch(new RegExp(`^${stack.simulator.webOrigin}/login/oauth/authorize\\?`));
    const callback = await landed;
    expect(callback.searchParams.get("state")).toBe(again.state);
    const token = await redeem(gw, { clientId: again.clientId, code: callback.searchParams.get("code")!, verifier: again.verifier });
    expect(token.status).toBe(200);

    // a link on another site (Sec-Fetch-Site: cross-site): Screen 1 again, though the session cookie (SameSite=Lax) came along
    const third = await authorization(first.clientId);
    await chromium
      .context()
      .route("http://elsewhere.test/", (route) =>
        route.fulfill({ contentType: "text/html", body: `<a href="${third.url.replaceAll("&", "&amp;")}">Connect</a>` }),
      );
    await page.goto("http://elsewhere.test/");
    const shown = page.waitForResponse((r) => r.url().startsWith(`${gw}/login?`));
    await page.getByRole("link", { name: "Connect" }).click();
    expect((await shown).status()).toBe(200);
    expect(await page.locator("h1").innerText()).toContain("Acme Agent");
    expect(await page.locator("main").innerText()).toContain(`Signed in as ${LOGIN.username}`);
    expect(problems).toEqual([]);
  });

  it("hears a CSP violation on the gateway's pages when there is one (the listener works)", async () => {
    const page = await openPage();
    await screen1(page);
    await page.locator("head").evaluate((head) => head.insertAdjacentHTML("beforeend", "<style>body { color: red }</style>"));
    await expect.poll(() => problems.join("\n")).toMatch(/Content Security Policy/);
  });
});
