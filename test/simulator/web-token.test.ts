import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { CALLBACK, GITHUB_APP, OAUTH_APP, getCode, secretOf, tokenCall } from "./helpers.js";

const TOKEN_DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";
const BAD_CODE = {
  error: "bad_verification_code",
  error_description: "The code passed is incorrect or expired.",
  error_uri: `${TOKEN_DOCS}#bad-verification-code`,
};

describe("POST /login/oauth/access_token (spec S1.4)", () => {
  const clock = new ManualClock();
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ clock });
  });
  afterAll(() => sim.close());

  const exchange = (code: string, verifier: string, extra: Record<string, string> = {}, accept?: string) =>
    tokenCall(sim, { client_id: OAUTH_APP.clientId, client_secret: secretOf(OAUTH_APP), code, code_verifier: verifier, ...extra }, accept);

  it("answers JSON for Accept: application/json with a non-expiring gho_ token", async () => {
    const { code, verifier } = await getCode(sim, OAUTH_APP, { scope: "repo gist" });
    const res = await exchange(code, verifier);
    expect(res.status).toBe(200);
    expect(res.contentType).toBe("application/json; charset=utf-8");
    expect(Object.keys(res.body)).toEqual(["access_token", "token_type", "scope"]);
    expect(res.body.access_token).toMatch(/^gho_[A-Za-z0-9]{36}$/);
    expect(res.body).toMatchObject({ token_type: "bearer", scope: "gist,repo" });
    expect(sim.issuedTokens().access).toContain(res.body.access_token);
  });

  it("answers form-urlencoded by default and XML on request", async () => {
    const first = await getCode(sim, OAUTH_APP, { scope: "gist" });
    const form = await exchange(first.code, first.verifier, {}, "");
    expect(form.contentType).toBe("application/x-www-form-urlencoded; charset=utf-8");
    expect(form.raw).toMatch(/^access_token=gho_[A-Za-z0-9]{36}&scope=gist&token_type=bearer$/);
    const second = await getCode(sim, OAUTH_APP, { scope: "gist" });
    const xml = await exchange(second.code, second.verifier, {}, "application/xml");
    expect(xml.raw).toMatch(/^<OAuth><token_type>bearer<\/token_type><scope>gist<\/scope><access_token>gho_\w+<\/access_token><\/OAuth>$/);
  });

  it("QUIRK: errors are HTTP 200, JSON or form-encoded by Accept", async () => {
    const json = await exchange("0000000000deadbeef00", "v");
    expect(json.status).toBe(200);
    expect(json.body).toEqual(BAD_CODE);
    const form = await exchange("0000000000deadbeef00", "v", {}, "");
    expect(form.status).toBe(200);
    expect(form.raw).toBe(
      "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2Ftroubleshooting-oauth-app-access-token-request-errors%2F%23bad-verification-code",
    );
  });

  it("requires client_secret even with PKCE; Basic auth does not count", async () => {
    const { code, verifier } = await getCode(sim, OAUTH_APP);
    const noSecret = await tokenCall(sim, { client_id: OAUTH_APP.clientId, code, code_verifier: verifier });
    expect(noSecret.body.error).toBe("incorrect_client_credentials");
    const basic = await fetch(`${sim.webOrigin}/login/oauth/access_token`, {
      method: "POST",
      headers: {
        accept: "application/json",
        authorization: `Basic ${Buffer.from(`${OAUTH_APP.clientId}:${secretOf(OAUTH_APP)}`).toString("base64")}`,
      },
      body: new URLSearchParams({ client_id: OAUTH_APP.clientId, code, code_verifier: verifier }),
    });
    expect(((await basic.json()) as { error: string }).error).toBe("incorrect_client_credentials");
    expect((await exchange(code, verifier)).body.access_token).toBeDefined();
  });

  it("rejects a wrong or missing code_verifier with bad_verification_code", async () => {
    const { code } = await getCode(sim, OAUTH_APP);
    expect((await exchange(code, "a".repeat(43))).body).toEqual(BAD_CODE);
    expect((await tokenCall(sim, { client_id: OAUTH_APP.clientId, client_secret: secretOf(OAUTH_APP), code })).body).toEqual(BAD_CODE);
  });

  it("codes are single use and bound to their client", async () => {
    const { code, verifier } = await getCode(sim, OAUTH_APP);
    const stolen = await tokenCall(sim, { client_id: GITHUB_APP.clientId, client_secret: secretOf(GITHUB_APP), code, code_verifier: verifier });
    expect(stolen.body).toEqual(BAD_CODE);
    expect((await exchange(code, verifier)).body.access_token).toBeDefined();
    expect((await exchange(code, verifier)).body).toEqual(BAD_CODE);
  });

  it("codes expire after 600 s by the injected clock", async () => {
    const fresh = await getCode(sim, OAUTH_APP);
    const stale = await getCode(sim, OAUTH_APP);
    clock.advance(599_000);
    expect((await exchange(fresh.code, fresh.verifier)).body.access_token).toBeDefined();
    clock.advance(2_000);
    expect((await exchange(stale.code, stale.verifier)).body).toEqual(BAD_CODE);
  });

  it("redirect_uri must match the one sent to authorize", async () => {
    const { code, verifier } = await getCode(sim, OAUTH_APP);
    const res = await exchange(code, verifier, { redirect_uri: "http://127.0.0.1:8123/upstream/callback/other" });
    expect(res.body).toEqual({
      error: "redirect_uri_mismatch",
      error_description: "The redirect_uri MUST match the registered callback URL for this application.",
      error_uri: "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2",
    });
    expect((await exchange(code, verifier, { redirect_uri: CALLBACK })).body.access_token).toBeDefined();
  });

  it("takes parameters from a JSON body or the query string", async () => {
    const a = await getCode(sim, OAUTH_APP);
    const json = await fetch(`${sim.webOrigin}/login/oauth/access_token`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ client_id: OAUTH_APP.clientId, client_secret: secretOf(OAUTH_APP), code: a.code, code_verifier: a.verifier }),
    });
    expect(((await json.json()) as { access_token?: string }).access_token).toMatch(/^gho_/);
    const b = await getCode(sim, OAUTH_APP);
    const query = new URLSearchParams({ client_id: OAUTH_APP.clientId, client_secret: secretOf(OAUTH_APP), code: b.code, code_verifier: b.verifier });
    const viaQuery = await fetch(`${sim.webOrigin}/login/oauth/access_token?${query.toString()}`, { method: "POST", headers: { accept: "application/json" } });
    expect(((await viaQuery.json()) as { access_token?: string }).access_token).toMatch(/^gho_/);
  });

  it("gives 400 only for an unparsable body, unsupported_grant_type otherwise", async () => {
    const broken = await fetch(`${sim.webOrigin}/login/oauth/access_token`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: "{not json",
    });
    expect(broken.status).toBe(400);
    const odd = await tokenCall(sim, { grant_type: "password", client_id: OAUTH_APP.clientId, client_secret: secretOf(OAUTH_APP) });
    expect(odd).toMatchObject({ status: 200, body: { error: "unsupported_grant_type" } });
  });

  it("faults.tokenEndpoint5xx answers 502 HTML for the next N calls, set at run time", async () => {
    sim.faults.tokenEndpoint5xx = 2;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await tokenCall(sim, { code: "x" })).status);
    expect(statuses).toEqual([502, 502, 200]);
  });
});

describe("token endpoint edge configurations", () => {
  it("unverified_user_email for a user without a verified primary email", async () => {
    const sim = await startSimulator({
      users: [{ id: 7, login: "ghost", emails: [{ email: "g@example.com", primary: true, verified: false, visibility: null }] }],
    });
    try {
      const { code, verifier } = await getCode(sim, OAUTH_APP);
      const res = await tokenCall(sim, { client_id: OAUTH_APP.clientId, client_secret: secretOf(OAUTH_APP), code, code_verifier: verifier });
      expect(res.body.error).toBe("unverified_user_email");
    } finally {
      await sim.close();
    }
  });

  it("longTokens quirk mints 200–520 character tokens", async () => {
    const sim = await startSimulator({ quirks: { longTokens: true } });
    try {
      const { code, verifier } = await getCode(sim, GITHUB_APP);
      const res = await tokenCall(sim, { client_id: GITHUB_APP.clientId, client_secret: secretOf(GITHUB_APP), code, code_verifier: verifier });
      for (const token of [res.body.access_token, res.body.refresh_token] as string[]) {
        expect(token.length).toBeGreaterThanOrEqual(200);
        expect(token.length).toBeLessThanOrEqual(520);
      }
    } finally {
      await sim.close();
    }
  });
});
