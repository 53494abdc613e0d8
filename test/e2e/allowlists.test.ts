import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestBrowser } from "../support/browser.js";
import { authorizeUrl, register, REDIRECT_URI, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { expectRefusal } from "../support/refusal.js";
import { LOGIN } from "../support/config.js";
import type { SimUser } from "../../src/simulator/index.js";

const APP_ID = "Ov23liSimOAuthApp0001";
const org = (login: string, id: number, state: "active" | "pending", restricted = false) => ({
  login,
  id,
  role: "member" as const,
  state,
  ...(restricted ? { oauthAppRestricted: [APP_ID] } : {}),
});
const USERS: SimUser[] = [
  { id: 583231, login: "octocat", orgs: [] },
  { id: 1001, login: "hubot", orgs: [] },
  { id: 1002, login: "mona", orgs: [org("acme", 9001, "active")] },
  { id: 1003, login: "invitee", orgs: [org("acme", 9001, "pending")] },
  { id: 1004, login: "locksmith", orgs: [org("locked", 9002, "active", true)] },
];

/**
 * Issue 6, who may pass: the GitHub upstream lists one user (in another case than GitHub's) and
 * two organisations. Each case signs a different user in at the simulated github.com and follows
 * the whole browser step to what the client receives.
 */
describe("allowUsers and allowOrgs at /upstream/callback (GitHub simulator)", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    stack = await startMultiStack({ simulator: { users: USERS }, github: { allowUsers: ["OctoCat"], allowOrgs: ["acme", "locked"] } });
  }, 60_000);
  afterAll(() => stack?.close());

  async function signInAs(userId: number) {
    stack.simulator.signIn(userId);
    const { client_id } = await register(stack.gateway.publicUrl);
    const { verifier, challenge } = pkce();
    const url = authorizeUrl(stack.gateway.publicUrl, {
      response_type: "code",
      client_id,
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "allow-st",
      resource: stack.urls.github,
    });
    const browser = new TestBrowser();
    return { end: await browser.walk(url, { redirectUri: REDIRECT_URI, ...LOGIN }), browser, client_id, verifier };
  }

  async function admitted(userId: number) {
    const { end, client_id, verifier } = await signInAs(userId);
    if (!("redirect" in end)) throw new Error(`refused: HTTP ${end.status} ${end.text.slice(0, 300)}`);
    const code = end.redirect.searchParams.get("code")!;
    expect(code).toBeTruthy();
    const token = await tokenRequest(stack.gateway.publicUrl, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      client_id,
      redirect_uri: REDIRECT_URI,
    });
    expect(token.status).toBe(200);
  }

  const revocations = () => stack.simulator.requests.filter((r) => r.origin === "api" && r.method === "DELETE" && r.path === `/applications/${APP_ID}/token`);

  async function refused(userId: number) {
    const revoked = revocations().length;
    const { end, browser } = await signInAs(userId);
    // the upstream token the refused user brought back is given back to GitHub
    expect(revocations()).toHaveLength(revoked + 1);
    return expectRefusal(end, browser, { state: "allow-st", issuer: stack.gateway.publicUrl });
  }

  it("lets a listed user pass, whatever the case of the login", async () => {
    await admitted(583231);
  });

  it("refuses a user on no list, saying who was refused", async () => {
    const page = await refused(1001);
    expect(page).toContain("GitHub user hubot may not use github through this gateway.");
  });

  it("lets an active member of a listed organisation pass", async () => {
    await admitted(1002);
  });

  it("refuses a member whose invitation is pending, and says so", async () => {
    const page = await refused(1003);
    expect(page).toContain("Your invitation to acme is still pending");
  });

  it("refuses when the organisation restricts third-party apps (GitHub's 403), naming where an owner approves it", async () => {
    const page = await refused(1004);
    expect(page).toContain("locked restricts third-party OAuth apps");
    // GitHub's own host (an Enterprise Server's, or here the simulator's), not always github.com
    expect(page).toContain(`${stack.simulator.webOrigin}/organizations/locked/settings/oauth_application_policy`);
    // the gateway did ask GitHub, and GitHub answered 403
    const lookups = stack.simulator.requests.filter((r) => r.origin === "api" && r.path.startsWith("/user/memberships/orgs/locked"));
    expect(lookups.length).toBeGreaterThan(0);
  });

  it("asks GitHub for read:org, which the membership API needs", () => {
    const authorizations = stack.simulator.requests.filter((r) => r.origin === "web" && r.path.startsWith("/login/oauth/authorize"));
    expect(authorizations.length).toBeGreaterThan(0);
    for (const r of authorizations) expect(new URL(r.path, stack.simulator.webOrigin).searchParams.get("scope")?.split(" ")).toContain("read:org");
  });
});
