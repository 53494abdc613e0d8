import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ManualClock } from "../../src/clock.js";
import { DEFAULT_APPS, type Simulator } from "../../src/simulator/index.js";
import { REDIRECT_URI, mcpInitialize, obtainCode, register, tokenRequest } from "../support/oauth-steps.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md MC18–MC19, RU2: RFC 7662 introspection, RFC 7009 revocation, and RFC 7592 deletion. */
describe("revocation", () => {
  let stack: Stack;
  let simulator: Simulator;
  let clock: ManualClock;
  let gw: string;
  const app = DEFAULT_APPS.find((a) => a.kind === "github_app")!;
  beforeAll(async () => {
    stack = await startStack({ mode: "github_app" });
    ({ simulator, clock } = stack);
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
    const response = await fetch(`${gw}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form).toString(),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}` });
  /** A client (confidential unless `public`) and a fresh grant's tokens for it. */
  const clientWithTokens = async (kind: "confidential" | "public") => {
    const client = await register(gw, { token_endpoint_auth_method: kind === "public" ? "none" : "client_secret_post" });
    const c = await obtainCode(gw, { clientId: client.client_id });
    const secret: Record<string, string> = client.client_secret ? { client_secret: client.client_secret } : {};
    const issued = await tokenRequest(gw, {
      grant_type: "authorization_code",
      code: c.code,
      code_verifier: c.verifier,
      redirect_uri: REDIRECT_URI,
      client_id: client.client_id,
      ...secret,
    });
    expect(issued.status).toBe(200);
    const { access, refresh } = simulator.issuedTokens();
    return {
      id: client.client_id,
      auth: { client_id: client.client_id, ...secret } as Record<string, string>,
      tokens: issued.body,
      upstreamAccess: access.at(-1)!,
      upstreamRefresh: refresh.at(-1)!,
    };
  };
  const refreshAtGitHub = async (token: string) => {
    const form = { grant_type: "refresh_token", refresh_token: token, client_id: app.clientId, client_secret: app.clientSecrets[0]! };
    const response = await fetch(`${simulator.webOrigin}/login/oauth/access_token`, {
      method: "POST",
      headers: { accept: "application/json" },
      body: new URLSearchParams(form),
    });
    return ((await response.json()) as { error?: string }).error;
  };
  const atGitHub = (token: string) => fetch(`${simulator.apiOrigin}/user`, { headers: { authorization: `Bearer ${token}`, "user-agent": "test" } });

  it("MC18 introspection answers only authenticated clients, about their own tokens", async () => {
    const a = await clientWithTokens("confidential");
    const b = await clientWithTokens("confidential");
    const p = await clientWithTokens("public");

    const own = await post("/introspect", { token: a.tokens.access_token! }, basic(a.id, a.auth.client_secret!));
    expect(own.status).toBe(200);
    expect(own.headers.get("cache-control")).toBe("no-store");
    expect(own.body).toMatchObject({ active: true, client_id: a.id, sub: LOGIN.username, aud: `${gw}/mcp`, iss: gw, token_type: "Bearer" });
    expect(typeof own.body.scope).toBe("string");
    expect(own.body.exp as number).toBeGreaterThan(own.body.iat as number);
    const refreshToken = await post("/introspect", { token: a.tokens.refresh_token!, token_type_hint: "refresh_token", ...a.auth });
    expect(refreshToken.body).toMatchObject({ active: true, client_id: a.id, sub: LOGIN.username });
    for (const answer of [own.text, refreshToken.text]) {
      expect(answer).not.toContain(a.upstreamAccess); // never the upstream token
      expect(answer).not.toContain("~");
    }

    // another client's token, unknown and malformed tokens: inactive, and nothing more
    for (const token of [b.tokens.access_token!, b.tokens.refresh_token!, p.tokens.access_token!, "garbage", `${a.tokens.access_token}x`])
      expect((await post("/introspect", { token, ...a.auth })).body).toEqual({ active: false });

    // public clients, wrong secrets and anonymous callers learn nothing
    for (const [form, headers] of [
      [{ token: p.tokens.access_token!, client_id: p.id }, {}],
      [{ token: a.tokens.access_token! }, basic(a.id, "wrong")],
      [{ token: a.tokens.access_token!, client_id: a.id, client_secret: "wrong" }, {}],
      [{ token: a.tokens.access_token! }, {}],
    ] as const) {
      const refused = await post("/introspect", form, headers);
      expect(refused.status).toBe(401);
      expect(refused.body.error).toBe("invalid_client");
      expect(refused.text).not.toContain("active");
    }
    expect((await post("/introspect", { ...a.auth })).body.error).toBe("invalid_request");

    // revoked, then expired: inactive
    expect((await post("/revoke", { token: b.tokens.refresh_token!, ...b.auth })).status).toBe(200);
    expect((await post("/introspect", { token: b.tokens.access_token!, ...b.auth })).body).toEqual({ active: false });
    expect((await post("/introspect", { token: a.tokens.access_token!, ...a.auth })).body.active).toBe(true);
    clock.advance((Number(a.tokens.expires_in) + 1) * 1000);
    expect((await post("/introspect", { token: a.tokens.access_token!, ...a.auth })).body).toEqual({ active: false });
    expect((await post("/introspect", { token: a.tokens.refresh_token!, ...a.auth })).body.active).toBe(true);
  });

  it("MC19 a used refresh token whose successor is unused is revoked, and introspected, as the live token it still is", async () => {
    const refresh = (token: string, auth: Record<string, string>) => tokenRequest(gw, { grant_type: "refresh_token", refresh_token: token, ...auth });
    // the refresh rule: R0 was used, its answer lost, so R0 still works; revoking it ends the grant
    const p = await clientWithTokens("public");
    clock.advance(8 * 3600_000 - 60_000); // the GitHub App token is due: the lost refresh gets new upstream tokens
    const lost = await refresh(p.tokens.refresh_token!, p.auth);
    expect(lost.status).toBe(200);
    const latest = simulator.issuedTokens().access.at(-1)!;
    expect(latest).not.toBe(p.upstreamAccess);
    expect((await post("/revoke", { token: p.tokens.refresh_token!, ...p.auth })).status).toBe(200);
    expect((await refresh(p.tokens.refresh_token!, p.auth)).body.error).toBe("invalid_grant");
    expect((await refresh(lost.body.refresh_token!, p.auth)).body.error).toBe("invalid_grant");
    expect((await mcpInitialize(`${gw}/mcp`, `Bearer ${lost.body.access_token}`)).status).toBe(401);
    // and the upstream is asked to revoke the grant's latest token, the one the lost answer carried
    expect((await atGitHub(latest)).status).toBe(401);
    expect(simulator.requests.filter((r) => r.method === "DELETE" && r.body.includes(latest))).toHaveLength(1);

    // introspection: active while its successor is unused, and only then; looking changes nothing
    const a = await clientWithTokens("confidential");
    const introspected = async (token: string) => (await post("/introspect", { token, ...a.auth })).body;
    const r1 = await refresh(a.tokens.refresh_token!, a.auth);
    expect(await introspected(a.tokens.refresh_token!)).toMatchObject({ active: true, client_id: a.id, sub: LOGIN.username, aud: `${gw}/mcp` });
    const r2 = await refresh(r1.body.refresh_token!, a.auth);
    expect(r2.status).toBe(200);
    expect(await introspected(a.tokens.refresh_token!)).toEqual({ active: false });
    expect(await introspected(r1.body.refresh_token!)).toMatchObject({ active: true, client_id: a.id });
  });

  it("RU2 deleting a registration (RFC 7592 §2.3) ends its grants: its tokens are refused, and its upstream token is given back when its refresh token comes", async () => {
    const registered = await fetch(`${gw}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none", client_name: "leaving client" }),
    });
    const { client_id, registration_access_token } = (await registered.json()) as { client_id: string; registration_access_token: string };
    const grants = [];
    for (let i = 0; i < 2; i++) {
      const c = await obtainCode(gw, { clientId: client_id });
      const issued = await tokenRequest(gw, {
        grant_type: "authorization_code",
        code: c.code,
        code_verifier: c.verifier,
        redirect_uri: REDIRECT_URI,
        client_id,
      });
      expect(issued.status).toBe(200);
      grants.push({ tokens: issued.body, upstreamAccess: simulator.issuedTokens().access.at(-1)! });
    }
    const other = await clientWithTokens("public");
    const live = (token: string) => mcpInitialize(`${gw}/mcp`, `Bearer ${token}`).then((r) => r.status);
    expect(await Promise.all([...grants.map((g) => live(g.tokens.access_token!)), live(other.tokens.access_token!)])).toEqual([200, 200, 200]);

    const deleted = await fetch(`${gw}/register/${client_id}`, { method: "DELETE", headers: { authorization: `Bearer ${registration_access_token}` } });
    expect(deleted.status).toBe(204);
    for (const g of grants) {
      expect(await live(g.tokens.access_token!)).toBe(401);
      const refreshed = await tokenRequest(gw, { grant_type: "refresh_token", refresh_token: g.tokens.refresh_token!, client_id });
      expect([refreshed.status, refreshed.body.error]).toEqual([400, "invalid_client"]);
      // the store holds no upstream token: the one the refresh token carries is given back as it is presented
      expect((await atGitHub(g.upstreamAccess)).status).toBe(401);
    }
    // another client's grant is untouched
    expect(await live(other.tokens.access_token!)).toBe(200);
    expect((await atGitHub(other.upstreamAccess)).status).toBe(200);
  });

  it("MC19 a revoked token is dead at the gateway and at the upstream", async () => {
    const p = await clientWithTokens("public");
    const q = await clientWithTokens("public");
    const live = async (t: Awaited<ReturnType<typeof clientWithTokens>>) => (await mcpInitialize(`${gw}/mcp`, `Bearer ${t.tokens.access_token}`)).status;
    expect([await live(p), await live(q), (await atGitHub(p.upstreamAccess)).status]).toEqual([200, 200, 200]);

    // RFC 7009 §2.2: unknown tokens, unknown hints and other clients' tokens: 200, and nothing happens
    for (const form of [
      { token: "garbage", ...p.auth },
      { token: "garbage", token_type_hint: "id_token", ...p.auth },
      { token: q.tokens.refresh_token!, ...p.auth },
      { token: q.tokens.access_token!, token_type_hint: "access_token", ...p.auth },
    ])
      expect((await post("/revoke", form)).status).toBe(200);
    expect([await live(q), (await atGitHub(q.upstreamAccess)).status]).toEqual([200, 200]);
    const anonymous = await post("/revoke", { token: p.tokens.refresh_token! }); // RFC 7009 §2.1: the client authenticates as at /token
    expect([anonymous.status, anonymous.body.error]).toEqual([401, "invalid_client"]);

    const revoked = await post("/revoke", { token: p.tokens.refresh_token!, token_type_hint: "refresh_token", ...p.auth });
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe("");
    expect(await live(p)).toBe(401);
    const refreshed = await tokenRequest(gw, { grant_type: "refresh_token", refresh_token: p.tokens.refresh_token!, client_id: p.id });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe("invalid_grant");
    // and at GitHub: DELETE /applications/{client_id}/token with the gateway's app credentials
    expect((await atGitHub(p.upstreamAccess)).status).toBe(401);
    expect(await refreshAtGitHub(p.upstreamRefresh)).toBe("bad_refresh_token");
    const deletion = simulator.requests.filter((r) => r.origin === "api" && r.method === "DELETE" && r.body.includes(p.upstreamAccess));
    expect(deletion.map((r) => r.path)).toEqual([`/applications/${app.clientId}/token`]);
    expect(deletion[0]!.headers.authorization).toBe(basic(app.clientId, app.clientSecrets[0]!).authorization);

    // an access token presented under the wrong hint revokes just the same; q's grant was untouched until now
    expect((await post("/revoke", { token: q.tokens.access_token!, token_type_hint: "refresh_token", ...q.auth })).status).toBe(200);
    expect([await live(q), (await atGitHub(q.upstreamAccess)).status]).toEqual([401, 401]);

    // an upstream that cannot be reached never fails the client's request, and the gateway grant still ends
    const r = await clientWithTokens("public");
    await simulator.close();
    expect((await post("/revoke", { token: r.tokens.access_token!, ...r.auth })).status).toBe(200);
    expect(await live(r)).toBe(401);
  });
});
