import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nowSeconds } from "../../src/clock.js";
import { deriveKeys, randomToken, s256, seal } from "../../src/crypto.js";
import { signAccessToken } from "../../src/grants/format.js";
import { storeKey } from "../../src/store/store.js";
import { TestBrowser } from "../support/browser.js";
import { REDIRECT_URI, authorizeUrl, mcpInitialize, obtainCode, redeem, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md MC13–MC15, MC33: codes and tokens a malicious client stole, replayed or forged. */
describe("tokens", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ mode: "oauth_app" });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const refresh = (token: string, clientId: string) => tokenRequest(gw, { grant_type: "refresh_token", refresh_token: token, client_id: clientId });
  const expectRefused = (response: Awaited<ReturnType<typeof tokenRequest>>, error: string, what = error) => {
    expect(response.status, what).toBe(400);
    expect(response.body.error, what).toBe(error);
    expect(response.body).not.toHaveProperty("access_token");
    expect(response.headers.get("cache-control")).toBe("no-store");
  };
  /** RFC 6750 §3.1: 401 invalid_token with the challenge that sends the client to discovery. */
  const expectInvalidToken = async (token: string) => {
    const response = await mcpInitialize(stack.mcpUrl, `Bearer ${token}`);
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate")!;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="invalid_token"');
    expect(challenge).toContain(`resource_metadata="${gw}/.well-known/oauth-protected-resource/mcp"`);
  };

  it("MC13 a code redeemed without its verifier, by another client or for another redirect is refused", async () => {
    const other = await register(gw);
    const form = (c: { clientId: string; code: string; verifier: string }) => ({
      grant_type: "authorization_code",
      code: c.code,
      code_verifier: c.verifier,
      client_id: c.clientId,
      redirect_uri: REDIRECT_URI,
    });
    const attempts: [string, (c: Awaited<ReturnType<typeof obtainCode>>) => Record<string, string>, string][] = [
      ["no verifier", (c) => ({ ...form(c), code_verifier: "" }), "invalid_request"],
      ["a wrong verifier", (c) => ({ ...form(c), code_verifier: pkce().verifier }), "invalid_grant"],
      ["another client", (c) => ({ ...form(c), client_id: other.client_id }), "invalid_grant"],
      ["another redirect URI", (c) => ({ ...form(c), redirect_uri: "http://127.0.0.1:33418/elsewhere" }), "invalid_grant"],
      ["no redirect URI though the request had one", (c) => ({ ...form(c), redirect_uri: "" }), "invalid_grant"],
    ];
    for (const [what, tamper, error] of attempts) {
      const c = await obtainCode(gw);
      expectRefused(await tokenRequest(gw, tamper(c)), error, what);
      // the stolen code's refusal used it up: the rightful holder cannot redeem it afterwards either
      expectRefused(await redeem(gw, c), "invalid_grant", `${what}, then the rightful redemption`);
    }
    const late = await obtainCode(gw);
    stack.clock.advance(61_000); // a code lives 60 s
    expectRefused(await redeem(gw, late), "invalid_grant");

    const rightful = await obtainCode(gw);
    const ok = await redeem(gw, rightful);
    expect(ok.status).toBe(200);
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${ok.body.access_token}`)).status).toBe(200);
  });

  it("MC33 a code_verifier outside RFC 7636 §4.1 (43 to 128 unreserved characters) is refused, even when it matches the challenge", async () => {
    /** A code whose challenge is S256 of exactly this verifier, so only the verifier's form can refuse it. */
    const codeFor = async (verifier: string) => {
      const { client_id } = await register(gw);
      const url = authorizeUrl(gw, {
        response_type: "code",
        client_id,
        redirect_uri: REDIRECT_URI,
        code_challenge: s256(verifier),
        code_challenge_method: "S256",
        state: "st",
        resource: `${gw}/mcp`,
      });
      const redirect = await new TestBrowser().authorize(url, { redirectUri: REDIRECT_URI, ...LOGIN });
      return { clientId: client_id, code: redirect.searchParams.get("code")!, verifier };
    };
    const unreserved = "ABCxyz019-._~";
    const fill = (n: number, chars = unreserved) => chars.repeat(Math.ceil(n / chars.length)).slice(0, n);
    for (const [what, verifier] of [
      ["42 characters", fill(42)],
      ["129 characters", fill(129)],
      ["a plus sign", `${fill(42)}+`],
      ["a slash", `${fill(42)}/`],
      ["padding", `${fill(42)}=`],
      ["a space", `${fill(21)} ${fill(21)}`],
      ["a non-ASCII letter", `${fill(42)}é`],
    ] as const) {
      const refused = await redeem(gw, await codeFor(verifier));
      expectRefused(refused, "invalid_grant", what);
      expect(refused.body.error_description, what).toContain("RFC 7636 §4.1");
    }
    for (const verifier of [fill(43), fill(128)]) expect((await redeem(gw, await codeFor(verifier))).status, `${verifier.length} characters`).toBe(200);
  });

  it("MC14 a replayed authorization code revokes what it issued", async () => {
    const c = await obtainCode(gw);
    const first = await redeem(gw, c);
    expect(first.status).toBe(200);
    const rotated = await refresh(first.body.refresh_token!, c.clientId);
    expect(rotated.status).toBe(200);
    for (const t of [first.body, rotated.body]) expect((await mcpInitialize(stack.mcpUrl, `Bearer ${t.access_token}`)).status).toBe(200);

    expectRefused(await redeem(gw, c), "invalid_grant");
    // OAuth 2.1 §4.1.3: every token of the grant dies, including those minted since by refresh
    for (const t of [first.body, rotated.body]) await expectInvalidToken(t.access_token!);
    expectRefused(await refresh(rotated.body.refresh_token!, c.clientId), "invalid_grant");
    expectRefused(await refresh(first.body.refresh_token!, c.clientId), "invalid_grant");
  });

  it("MC15 swapped, tampered, expired, revoked and wrong-audience tokens are refused", async () => {
    const alice = await redeem(gw, await obtainCode(gw));
    const bobCode = await obtainCode(gw);
    const bob = await redeem(gw, bobCode);
    const [g, u] = alice.body.access_token!.split("~") as [string, string];
    const [gB, uB] = bob.body.access_token!.split("~") as [string, string];
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${g}~${u}`)).status).toBe(200);

    const flip = (s: string) => s.replace(/^./, (ch) => (ch === "A" ? "B" : "A"));
    const withClaims = (jwt: string, change: (claims: Record<string, unknown>) => void) => {
      const [h, p, sig] = jwt.split(".");
      const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
      change(claims);
      return `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sig}`;
    };
    const sealedPart = (i: number, change: (part: string) => string) =>
      u
        .split(".")
        .map((part, j) => (j === i ? change(part) : part))
        .join(".");
    const header = JSON.parse(Buffer.from(u.split(".")[0]!, "base64url").toString()) as Record<string, unknown>;
    const forged = [
      `${g}~${uB}`, // halves swapped between two grants
      `${gB}~${u}`,
      `${g.slice(0, -3)}${g.endsWith("AAA") ? "BBB" : "AAA"}~${u}`, // signature
      `${withClaims(g, (c) => (c.scope = "admin"))}~${u}`, // claims
      `${withClaims(g, (c) => (c.gid = bob.body.access_token))}~${u}`,
      `${g}~${sealedPart(3, flip)}`, // sealed ciphertext
      `${g}~${sealedPart(0, () => Buffer.from(JSON.stringify({ ...header, bnd: "x" })).toString("base64url"))}`, // sealed binding
      g, // a missing half
      `${g}~${u}~${u}`,
      stack.simulator.issuedTokens().access.at(-1)!, // a raw upstream token (no passthrough)
    ];
    for (const token of forged) await expectInvalidToken(token);

    // RFC 8707: a JWT signed with the gateway's real key, but for another resource
    const keys = deriveKeys((await stack.gateway.store.get<string>(storeKey.masterSecret()))!);
    const mint = async (audience: string) => {
      const jti = randomToken(16);
      const claims = { sub: "octocat", client_id: "any", scope: "", gid: randomToken(16), jti };
      const at = await signAccessToken(keys, claims, { issuer: gw, audience, expiresAt: nowSeconds(stack.clock) + 600, clock: stack.clock });
      return `${at}~${await seal(keys, { access_token: stack.simulator.issuedTokens().access.at(-1)! }, jti)}`;
    };
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${await mint(`${gw}/mcp`)}`)).status).toBe(200);
    await expectInvalidToken(await mint("https://other.example/mcp"));

    // revoked: the grant is gone though the token itself is intact
    const revoked = await fetch(`${gw}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: bob.body.refresh_token!, client_id: bobCode.clientId }).toString(),
    });
    expect(revoked.status).toBe(200);
    await expectInvalidToken(bob.body.access_token!);

    // expired
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${g}~${u}`)).status).toBe(200);
    stack.clock.advance((Number(alice.body.expires_in) + 1) * 1000);
    await expectInvalidToken(`${g}~${u}`);
  });
});
