import { afterEach, describe, expect, it } from "vitest";
import { fetch } from "undici";
import { TestBrowser } from "../support/browser.js";
import { authorizeUrl, register, REDIRECT_URI, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { expectRefusal } from "../support/refusal.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import type { OidcAccount } from "../support/oidc-upstream.js";
import { LOGIN } from "../support/config.js";

/**
 * Issue 6, who may pass at an OpenID Provider (oidc-provider, found by detection): `allowUsers`
 * entries match the account's `sub`, or its email only when `email_verified` is true (OIDC Core
 * §5.1), from the ID token or userinfo. The provider signs in one fixed account, so each case runs
 * its own stack.
 */
describe("allowUsers at /upstream/callback (OpenID Provider)", () => {
  let stack: MultiStack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  async function signIn(account: OidcAccount, allowUsers: string[]) {
    stack = await startMultiStack({ oidcUpstream: { account }, oidc: { allowUsers } });
    const base = stack.gateway.publicUrl;
    const { client_id, client_secret } = await register(base, { token_endpoint_auth_method: "client_secret_post" });
    const { verifier, challenge } = pkce();
    const url = authorizeUrl(base, {
      response_type: "code",
      client_id,
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "oidc-st",
      resource: stack.urls.oidc,
    });
    const browser = new TestBrowser();
    const end = await browser.walk(url, { redirectUri: REDIRECT_URI, ...LOGIN });
    return { stack, end, browser, client: { client_id, client_secret: client_secret! }, verifier };
  }

  /** The scope the gateway asked the provider for. */
  const upstreamScope = (s: MultiStack): string[] => {
    const asked = s.oidc.providerRequests.filter((r) => r.method === "GET" && r.path === "/auth" && typeof r.query.scope === "string");
    expect(asked.length).toBeGreaterThan(0);
    return String(asked[0]!.query.scope).split(" ");
  };

  /** Admitted: redeem the code, then ask /introspect (RFC 7662) what the grant recorded. */
  async function admitted(account: OidcAccount, allowUsers: string[]): Promise<{ s: MultiStack; introspection: Record<string, unknown> }> {
    const { stack: s, end, client, verifier } = await signIn(account, allowUsers);
    if (!("redirect" in end)) throw new Error(`refused: HTTP ${end.status} ${end.text.slice(0, 300)}`);
    const code = end.redirect.searchParams.get("code");
    expect(code, end.redirect.href).toBeTruthy();
    const base = s.gateway.publicUrl;
    const token = await tokenRequest(base, { grant_type: "authorization_code", code: code!, code_verifier: verifier, redirect_uri: REDIRECT_URI, ...client });
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const response = await fetch(`${base}/introspect`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: token.body.access_token!, ...client }).toString(),
    });
    expect(response.status).toBe(200);
    return { s, introspection: (await response.json()) as Record<string, unknown> };
  }

  async function refused(account: OidcAccount, allowUsers: string[]): Promise<{ s: MultiStack; page: string }> {
    const { stack: s, end, browser } = await signIn(account, allowUsers);
    return { s, page: expectRefusal(end, browser, { state: "oidc-st", issuer: s.gateway.publicUrl }) };
  }

  it("lets a listed sub pass, asking the provider for openid only", async () => {
    const { s, introspection } = await admitted({ sub: "ada-sub", email: "ada@example.com", email_verified: false }, ["ada-sub"]);
    expect(introspection).toMatchObject({ active: true, aud: s.urls.oidc, username: LOGIN.username, upstream_identity: { sub: "ada-sub" } });
    // no entry is an address, so none was asked for, and none is recorded
    expect(introspection.upstream_identity).toEqual({ sub: "ada-sub" });
    const scope = upstreamScope(s);
    expect(scope).toContain("openid");
    expect(scope).not.toContain("email");
  }, 60_000);

  it("lets a listed verified email pass, whatever its case, and records it with the sub", async () => {
    const { s, introspection } = await admitted({ sub: "grace-sub", email: "Grace@Example.com", email_verified: true }, ["grace@example.com"]);
    expect(introspection).toMatchObject({
      active: true,
      aud: s.urls.oidc,
      username: LOGIN.username,
      upstream_identity: { sub: "grace-sub", email: "Grace@Example.com" },
    });
    expect(upstreamScope(s)).toEqual(expect.arrayContaining(["openid", "email"]));
  }, 60_000);

  it("refuses a listed email the provider has not verified", async () => {
    const { s, page } = await refused({ sub: "eve-sub", email: "eve@example.com", email_verified: false }, ["eve@example.com"]);
    expect(page).toContain("may not use oidc through this gateway.");
    expect(page).not.toContain("eve@example.com");
    // the provider was asked for the address, and it did answer: the refusal is the gateway's
    expect(upstreamScope(s)).toEqual(expect.arrayContaining(["openid", "email"]));
    expect(s.oidc.grants.some((g) => g.grantType === "authorization_code")).toBe(true);
  }, 60_000);

  it("refuses an account on no list, saying who was refused", async () => {
    const { page } = await refused({ sub: "mallory-sub", email: "mallory@example.com", email_verified: true }, ["ada-sub", "grace@example.com"]);
    expect(page).toContain("The account mallory@example.com may not use oidc through this gateway.");
  }, 60_000);
});
