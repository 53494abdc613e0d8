import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callGetMe } from "../support/connect.js";
import { mcpInitialize, obtainCode, redeem, tokenRequest } from "../support/manual.js";
import { startStack, type Stack } from "../support/stack.js";

const HOUR = 3600_000;

/** docs/security.md MC16–MC17: refresh rotation with reuse detection, and the grace that spares honest retries. */
describe("refresh", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ mode: "github_app" }); // single-use rotating upstream refresh tokens
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const refresh = (token: string, clientId: string) => tokenRequest(gw, { grant_type: "refresh_token", refresh_token: token, client_id: clientId });
  const upstreamRefreshes = () =>
    stack.simulator.requests.filter((r) => r.path.startsWith("/login/oauth/access_token") && new URLSearchParams(r.body).get("grant_type") === "refresh_token")
      .length;
  const grant = async () => {
    const c = await obtainCode(gw);
    const issued = await redeem(gw, c);
    expect(issued.status).toBe(200);
    return { clientId: c.clientId, tokens: issued.body };
  };
  const expectDead = async (tokens: Record<string, string>, clientId: string) => {
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${tokens.access_token}`)).status).toBe(401);
    const again = await refresh(tokens.refresh_token!, clientId);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
  };

  it("MC16 refresh-token replay revokes the grant", async () => {
    // replayed after the grace window
    const a = await grant();
    const a2 = await refresh(a.tokens.refresh_token!, a.clientId);
    expect(a2.status).toBe(200);
    expect(a2.body.refresh_token).not.toBe(a.tokens.refresh_token);
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${a2.body.access_token}`)).status).toBe(200);
    stack.clock.advance(61_000);
    const replay = await refresh(a.tokens.refresh_token!, a.clientId);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
    await expectDead(a2.body, a.clientId); // OAuth 2.1 §4.3.1: the thief's replay ends the honest client's tokens too

    // replayed within the grace window, but after its successor was used
    const b = await grant();
    const b2 = await refresh(b.tokens.refresh_token!, b.clientId);
    const b3 = await refresh(b2.body.refresh_token!, b.clientId);
    expect([b2.status, b3.status]).toEqual([200, 200]);
    const late = await refresh(b.tokens.refresh_token!, b.clientId);
    expect(late.status).toBe(400);
    expect(late.body.error).toBe("invalid_grant");
    await expectDead(b3.body, b.clientId);

    // a grant no replay touched keeps working
    const c = await grant();
    expect((await refresh(c.tokens.refresh_token!, c.clientId)).status).toBe(200);
  });

  it("MC17 an honest retry within the grace period is answered again", async () => {
    const { clientId, tokens } = await grant();
    stack.clock.advance(8 * HOUR - 60_000); // the GitHub App token has a minute left: this refresh goes upstream
    const before = upstreamRefreshes();
    const lost = await refresh(tokens.refresh_token!, clientId); // the client never sees this answer
    expect(lost.status).toBe(200);
    expect(upstreamRefreshes()).toBe(before + 1);

    stack.clock.advance(30_000);
    const retry = await refresh(tokens.refresh_token!, clientId);
    expect(retry.status).toBe(200);
    expect(retry.body.refresh_token).not.toBe(lost.body.refresh_token);
    // answered from the upstream tokens of the first exchange: the upstream refresh token inside the
    // retried token is already dead at GitHub, and no second upstream refresh was tried
    expect(upstreamRefreshes()).toBe(before + 1);
    expect((await callGetMe(gw, retry.body.access_token!)).login).toBe(stack.simulator.users[0]!.login);

    // the unanswered successor is retired, without costing the grant
    const retired = await refresh(lost.body.refresh_token!, clientId);
    expect(retired.status).toBe(400);
    expect(retired.body.error).toBe("invalid_grant");
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${retry.body.access_token}`)).status).toBe(200);

    // and the grant goes on: the next refresh rotates upstream again
    stack.clock.advance(8 * HOUR);
    const next = await refresh(retry.body.refresh_token!, clientId);
    expect(next.status).toBe(200);
    expect(upstreamRefreshes()).toBe(before + 2);
    expect((await callGetMe(gw, next.body.access_token!)).login).toBe(stack.simulator.users[0]!.login);
  });
});
