import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumSession } from "../support/chromium-session.js";
import { authorizationRequest, redeem, REDIRECT_URI, register } from "../support/oauth-steps.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { LOGIN } from "../support/config.js";

const SIGNS_IN_NOTE = "After you approve, the upstream service asks you to sign in and authorize the gateway.";

/** Issue 6's pages in headless Chromium: Screen 1 naming the upstream asked for, and the refusal page. */
describe("a real browser (Chromium) with several upstreams", () => {
  const chromium = chromiumSession();
  const { problems } = chromium;
  const openPage = (stack: MultiStack): Promise<Page> => chromium.openPage(stack.simulator.webOrigin);

  /** A new client's authorization request (state, PKCE S256) for `resource`, opened: Screen 1. */
  async function screen1(page: Page, stack: MultiStack, resource: string) {
    const gw = stack.gateway.publicUrl;
    const { client_id: clientId } = await register(gw, { client_name: "Acme Agent" });
    const { url, verifier, state } = authorizationRequest(gw, clientId, { resource });
    await page.goto(url);
    expect(page.url()).toMatch(new RegExp(`^${gw}/login\\?`));
    return { clientId, verifier, state };
  }

  /** What Screen 1 says about the upstream: the heading, the MCP server's `<code>`, and the whole text. */
  const shownUpstream = async (page: Page) => ({
    heading: await page.locator("h1").innerText(),
    resource: await page.locator('dt:text-is("MCP server") + dd code').allInnerTexts(),
    text: await page.locator("main").innerText(),
  });

  async function signInAndApprove(page: Page) {
    await page.getByLabel("Gateway username").fill(LOGIN.username);
    await page.getByLabel("Gateway password").fill(LOGIN.password);
    await page.getByRole("button", { name: "Approve" }).click();
  }

  /**
   * Resolves with the URL the client receives. Nobody listens at REDIRECT_URI (and Playwright routes
   * no redirects), so the request is the answer; the browser then shows its connection-refused page.
   */
  const backAtClient = (page: Page) => page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI)).then((r) => new URL(r.url()));

  describe("a static upstream (internal, API key)", () => {
    let stack: MultiStack;
    beforeAll(async () => {
      stack = await startMultiStack();
    }, 60_000);
    afterAll(() => stack?.close());

    it("names the upstream on Screen 1, promises no upstream sign-in, and approving sends the client a code", async () => {
      const gw = stack.gateway.publicUrl;
      const page = await openPage(stack);
      const requests: string[] = [];
      page.on("request", (r) => requests.push(r.url()));
      const { clientId, verifier, state } = await screen1(page, stack, stack.urls.internal);

      const shown = await shownUpstream(page);
      expect(shown.heading).toBe("Allow Acme Agent to use internal?");
      expect(shown.resource).toEqual([`${gw}/mcp/internal`]);
      expect(shown.text).not.toContain(SIGNS_IN_NOTE);

      const landed = backAtClient(page);
      await signInAndApprove(page);
      const callback = await landed;

      expect(callback.searchParams.get("state")).toBe(state);
      expect(callback.searchParams.get("iss")).toBe(gw);
      const code = callback.searchParams.get("code");
      expect(code).toBeTruthy();
      expect((await redeem(gw, { clientId, code: code!, verifier })).status).toBe(200);
      // no upstream leg: the browser never left the gateway before coming back to the client
      expect(requests.filter((u) => !u.startsWith(`${gw}/`) && !u.startsWith(REDIRECT_URI))).toEqual([]);
      expect(problems).toEqual([]);
    });
  });

  describe("a GitHub upstream whose allowUsers leaves the signed-in user out", () => {
    let stack: MultiStack;
    beforeAll(async () => {
      stack = await startMultiStack({ simulator: { users: [{ id: 1001, login: "hubot" }] }, github: { allowUsers: ["octocat"] } });
    }, 60_000);
    afterAll(() => stack?.close());

    /** Screen 1 for the GitHub upstream, approved; github.com consents by itself; the refusal page answers. */
    async function refusal(page: Page) {
      const gw = stack.gateway.publicUrl;
      const requests: string[] = [];
      page.on("request", (r) => requests.push(r.url()));
      const { state } = await screen1(page, stack, stack.urls.github);
      const shown = await shownUpstream(page);
      const answered = page.waitForResponse((r) => r.url().startsWith(`${gw}/upstream/callback/github?`));
      await signInAndApprove(page);
      const answer = await answered;
      await page.getByRole("heading", { name: "You may not pass" }).waitFor();
      return { gw, state, shown, answer, requests };
    }

    it("refuses hubot with a 403 page saying why, styled under the CSP, whose link tells the client access_denied", async () => {
      const page = await openPage(stack);
      const { gw, state, shown, answer, requests } = await refusal(page);

      expect(shown.heading).toBe("Allow Acme Agent to use github?");
      expect(shown.resource).toEqual([`${gw}/mcp/github`]);
      expect(shown.text).toContain(SIGNS_IN_NOTE);
      // the refusal came after github.com's consent, at the gateway's callback
      expect(requests.some((u) => u.startsWith(`${stack.simulator.webOrigin}/login/oauth/authorize?`))).toBe(true);
      expect(answer.status()).toBe(403);
      expect(page.url()).toBe(answer.url());
      expect(await page.locator("main").innerText()).toContain("GitHub user hubot may not use github through this gateway.");
      // the page's <style> (nonce) applied: the card's rounded border
      expect(await page.locator("main").evaluate((main) => main.ownerDocument.defaultView?.getComputedStyle(main).borderTopLeftRadius)).toBe("8px");
      // Chromium reports the 403 document itself; nothing else (no CSP violation)
      expect(problems).toEqual([`${answer.url()}: Failed to load resource: the server responded with a status of 403 (Forbidden)`]);

      const followed = page.waitForRequest((r) => r.isNavigationRequest() && r.frame() === page.mainFrame());
      await page.getByRole("link", { name: "Return to your MCP client" }).click();
      const callback = new URL((await followed).url());
      expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
      // RFC 6749 §4.1.2.1 with RFC 9207 iss: access_denied, the client's state, no code
      expect(callback.searchParams.get("error")).toBe("access_denied");
      expect(callback.searchParams.get("state")).toBe(state);
      expect(callback.searchParams.get("iss")).toBe(gw);
      expect(callback.searchParams.has("code")).toBe(false);
    });

    it("hears a CSP violation on the refusal page when there is one (the listener works)", async () => {
      const page = await openPage(stack);
      await refusal(page);
      await page.locator("head").evaluate((head) => head.insertAdjacentHTML("beforeend", "<style>body { color: red }</style>"));
      await expect.poll(() => problems.join("\n")).toMatch(/Content Security Policy/);
    });
  });
});
