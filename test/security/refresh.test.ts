import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compactDecrypt } from "jose";
import { deriveKeys, sha256 } from "../../src/crypto.js";
import { storeKey } from "../../src/store/store.js";
import { callGetMe } from "../support/connect.js";
import { mcpInitialize, obtainCode, redeem, tokenRequest } from "../support/oauth-steps.js";
import { startStack, type Stack } from "../support/stack.js";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** docs/security.md MC16–MC17, MC29: a refresh token stays valid until its successor is first used; any use of a used one revokes the grant. */
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
  const grant = async (scope?: string) => {
    const c = await obtainCode(gw, scope ? { scope } : {});
    const issued = await redeem(gw, c);
    expect(issued.status).toBe(200);
    return { clientId: c.clientId, tokens: issued.body };
  };
  const expectWorks = async (tokens: Record<string, string>) => expect((await callGetMe(gw, tokens.access_token!)).login).toBe(stack.simulator.users[0]!.login);
  const expectDead = async (tokens: Record<string, string>, clientId: string) => {
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${tokens.access_token}`)).status).toBe(401);
    const again = await refresh(tokens.refresh_token!, clientId);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
  };

  it("MC16 a replay after the successor was used revokes the grant", async () => {
    const { clientId, tokens } = await grant();
    const second = await refresh(tokens.refresh_token!, clientId);
    const third = await refresh(second.body.refresh_token!, clientId);
    expect([second.status, third.status]).toEqual([200, 200]);
    await expectWorks(third.body);

    const replay = await refresh(tokens.refresh_token!, clientId);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
    await expectDead(third.body, clientId); // RFC 9700 §4.14.2: the whole grant, the honest client's newest tokens included

    // a grant no replay touched keeps working
    const other = await grant();
    expect((await refresh(other.tokens.refresh_token!, other.clientId)).status).toBe(200);
  });

  it("MC16 a thief's replay followed by the honest client's next refresh revokes the grant for both", async () => {
    const { clientId, tokens } = await grant();
    const honest = await refresh(tokens.refresh_token!, clientId);
    expect(honest.status).toBe(200);

    const thief = await refresh(tokens.refresh_token!, clientId); // the successor is still unused: answered
    expect(thief.status).toBe(200);
    await expectWorks(thief.body);

    const caught = await refresh(honest.body.refresh_token!, clientId); // its successor was retired by the thief's fork
    expect(caught.status).toBe(400);
    expect(caught.body.error).toBe("invalid_grant");
    await expectDead(thief.body, clientId);
    await expectDead(honest.body, clientId);
  });

  it("MC17 a days-late replay with an unused successor is answered", async () => {
    const { clientId, tokens } = await grant();
    stack.clock.advance(8 * HOUR - 60_000); // the GitHub App token has a minute left: this refresh goes upstream
    const before = upstreamRefreshes();
    const lost = await refresh(tokens.refresh_token!, clientId); // the client never sees this answer
    expect(lost.status).toBe(200);
    expect(upstreamRefreshes()).toBe(before + 1);

    stack.clock.advance(4 * DAY);
    const late = await refresh(tokens.refresh_token!, clientId);
    expect(late.status).toBe(200);
    expect(late.body.refresh_token).not.toBe(lost.body.refresh_token);
    // refreshed upstream with the lost exchange's upstream refresh token: the one sealed inside the
    // replayed token was spent at GitHub four days ago
    expect(upstreamRefreshes()).toBe(before + 2);
    await expectWorks(late.body);

    const newest = await refresh(late.body.refresh_token!, clientId);
    expect(newest.status).toBe(200);
    await expectWorks(newest.body);
  });

  it("MC17 eight parallel refreshes with one token all answer and the grant goes on", async () => {
    const { clientId, tokens } = await grant();
    stack.clock.advance(8 * HOUR - 60_000);
    const before = upstreamRefreshes();
    stack.simulator.faults.latencyMs = 300; // all eight arrive while the first is still refreshing upstream
    const answers = await Promise.all(Array.from({ length: 8 }, () => refresh(tokens.refresh_token!, clientId))).finally(
      () => (stack.simulator.faults.latencyMs = 0),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(upstreamRefreshes()).toBe(before + 1);
    for (const answer of answers) expect((await mcpInitialize(stack.mcpUrl, `Bearer ${answer.body.access_token}`)).status).toBe(200);

    // one use, one answer: the refresh token they all got refreshes again
    expect(new Set(answers.map((a) => a.body.refresh_token)).size).toBe(1);
    const next = await refresh(answers[0]!.body.refresh_token!, clientId);
    expect(next.status).toBe(200);
    await expectWorks(next.body);
  });

  it("SS2 the upstream tokens a replay is answered from open only with the refresh token itself", async () => {
    const { clientId, tokens } = await grant();
    expect((await refresh(tokens.refresh_token!, clientId)).status).toBe(200);
    const r = tokens.refresh_token!.split("~")[0]!;
    const used = await stack.gateway.store.get<{ sealedUpstream: string }>(storeKey.usedRefreshToken(sha256(r)));
    const secret = await stack.gateway.store.get<string>(storeKey.masterSecret()); // the gateway generated it: a dump holds it
    expect(used?.sealedUpstream).toBeTruthy();
    expect(secret).toBeTruthy();
    // the binding is only checked after decryption: decrypting is what must fail
    await expect(compactDecrypt(used!.sealedUpstream, deriveKeys(secret!).current.sealing)).rejects.toThrow();
  });

  it("MC29 a refresh asking for less scope than the grant's is refused, since the upstream token would not narrow; the grant's own scope works", async () => {
    const { clientId, tokens } = await grant("read:user repo");
    expect(tokens.scope).toBe("read:user repo");
    const withScope = (token: string, scope: string) => tokenRequest(gw, { grant_type: "refresh_token", refresh_token: token, client_id: clientId, scope });

    const narrower = await withScope(tokens.refresh_token!, "read:user");
    expect([narrower.status, narrower.body.error]).toEqual([400, "invalid_scope"]);
    expect(narrower.body.error_description).toContain("cannot narrow");
    const wider = await withScope(tokens.refresh_token!, "read:user repo admin:org");
    expect([wider.status, wider.body.error]).toEqual([400, "invalid_scope"]);

    // the refused requests used nothing up: the grant's scope, in any order, refreshes as always
    const same = await withScope(tokens.refresh_token!, "repo read:user");
    expect(same.status).toBe(200);
    expect(same.body.scope).toBe("read:user repo");
    await expectWorks(same.body);
    const omitted = await refresh(same.body.refresh_token!, clientId);
    expect([omitted.status, omitted.body.scope]).toEqual([200, "read:user repo"]);
  });

  it("RFC 6749 §5.1 a token response for a grant without scopes has no scope member", async () => {
    const { clientId, tokens } = await grant();
    expect(tokens).not.toHaveProperty("scope");
    const refreshed = await refresh(tokens.refresh_token!, clientId);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).not.toHaveProperty("scope");

    const scoped = await grant("read:user");
    expect(scoped.tokens.scope).toBe("read:user");
  });
});
