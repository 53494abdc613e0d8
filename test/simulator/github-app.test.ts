import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { GITHUB_APP, OAUTH_APP, getCode, login, mcpPost, secretOf, tokenCall } from "./helpers.js";

const HOUR = 3_600_000;
const BAD_REFRESH = {
  error: "bad_refresh_token",
  error_description: "The refresh token passed is incorrect or expired.",
  error_uri: "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
};

describe("GitHub App user tokens (spec S1.4, §3)", () => {
  const clock = new ManualClock();
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ clock });
  });
  afterAll(() => sim.close());

  const refresh = (refreshToken: string, app = GITHUB_APP) =>
    tokenCall(sim, { client_id: app.clientId, client_secret: secretOf(app), grant_type: "refresh_token", refresh_token: refreshToken });
  const mcpStatus = async (token: string) => (await mcpPost(sim, token, { jsonrpc: "2.0", id: 1, method: "tools/list" })).status;

  it("mints an expiring ghu_ token with a ghr_ refresh token and an empty scope", async () => {
    const { code, verifier } = await getCode(sim, GITHUB_APP);
    const res = await tokenCall(sim, { client_id: GITHUB_APP.clientId, client_secret: secretOf(GITHUB_APP), code, code_verifier: verifier }, "");
    expect(res.raw).toMatch(
      /^access_token=ghu_[A-Za-z0-9]{36}&expires_in=28800&refresh_token=ghr_[A-Za-z0-9]{36}&refresh_token_expires_in=15811200&scope=&token_type=bearer$/,
    );
  });

  it("the access token dies after 8 h by the injected clock: MCP 401 invalid_token, API 401", async () => {
    const token = await login(sim, GITHUB_APP);
    const access = token.access_token as string;
    clock.advance(8 * HOUR - 1_000);
    expect(await mcpStatus(access)).toBe(200);
    clock.advance(1_000);
    const res = await mcpPost(sim, access, { jsonrpc: "2.0", id: 1, method: "tools/list" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const api = await fetch(`${sim.apiOrigin}/user`, { headers: { authorization: `Bearer ${access}`, "user-agent": "test" } });
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
    expect((await refresh(token.refresh_token as string)).body.access_token).toMatch(/^ghu_/);
  });

  it("refresh rotates both tokens; the old pair dies at once and replay gets bad_refresh_token", async () => {
    const first = await login(sim, GITHUB_APP);
    const second = await refresh(first.refresh_token as string);
    expect(second.status).toBe(200);
    expect(Object.keys(second.body)).toEqual(["access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "scope", "token_type"]);
    expect(second.body.access_token).not.toBe(first.access_token);
    expect(second.body.refresh_token).not.toBe(first.refresh_token);
    expect(await mcpStatus(first.access_token as string)).toBe(401);
    expect(await mcpStatus(second.body.access_token as string)).toBe(200);
    const replay = await refresh(first.refresh_token as string);
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(BAD_REFRESH);
  });

  it("two concurrent refreshes with the same token: exactly one wins", async () => {
    const token = await login(sim, GITHUB_APP);
    sim.faults.latencyMs = 30;
    try {
      const results = await Promise.all([refresh(token.refresh_token as string), refresh(token.refresh_token as string)]);
      const winners = results.filter((r) => typeof r.body.access_token === "string");
      const losers = results.filter((r) => r.body.error === "bad_refresh_token");
      expect([winners.length, losers.length]).toEqual([1, 1]);
    } finally {
      sim.faults.latencyMs = 0;
    }
  });

  it("refresh needs the client secret, and fails after the grant is revoked", async () => {
    const token = await login(sim, GITHUB_APP);
    const noSecret = await tokenCall(sim, { client_id: GITHUB_APP.clientId, grant_type: "refresh_token", refresh_token: token.refresh_token as string });
    expect(noSecret.body.error).toBe("incorrect_client_credentials");
    sim.revokeGrant(GITHUB_APP.clientId);
    expect((await refresh(token.refresh_token as string)).body).toEqual(BAD_REFRESH);
    expect(await mcpStatus(token.access_token as string)).toBe(401);
  });

  it("refresh tokens expire after 15811200 s; OAuth Apps have none", async () => {
    const token = await login(sim, GITHUB_APP);
    clock.advance(15_811_200_000);
    expect((await refresh(token.refresh_token as string)).body).toEqual(BAD_REFRESH);
    expect((await refresh(token.refresh_token as string, OAUTH_APP)).body).toEqual(BAD_REFRESH);
  });
});

it("a github_app with expiringUserTokens: false mints a non-expiring ghu_ token", async () => {
  const sim = await startSimulator({ apps: [{ ...GITHUB_APP, expiringUserTokens: false }] });
  try {
    const token = await login(sim, GITHUB_APP);
    expect(Object.keys(token)).toEqual(["access_token", "token_type", "scope"]);
    expect(token.access_token).toMatch(/^ghu_/);
  } finally {
    await sim.close();
  }
});
