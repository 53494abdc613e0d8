import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { GITHUB_APP, OAUTH_APP, login, mcpPost, secretOf } from "./helpers.js";

const UA = { "user-agent": "simulator-test" };

describe("api.github.com (spec S2)", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({
      users: [
        {
          id: 583231,
          login: "octocat",
          name: "The Octocat",
          publicEmail: "octocat@github.com",
          orgs: [
            { login: "octo-org", id: 9919, role: "member", state: "active" },
            { login: "locked-org", id: 9920, role: "admin", state: "active", oauthAppRestricted: [OAUTH_APP.clientId] },
            { login: "sso-org", id: 9921, role: "member", state: "active", samlRequired: true },
          ],
        },
      ],
    });
  });
  afterAll(() => sim.close());

  const get = (path: string, token?: string, headers: Record<string, string> = UA) =>
    fetch(`${sim.apiOrigin}${path}`, { headers: { ...headers, ...(token && { authorization: `Bearer ${token}` }) } });

  it("QUIRK: refuses requests without User-Agent with a 403 HTML body", async () => {
    const token = (await login(sim, OAUTH_APP)).access_token as string;
    // fetch always sends "user-agent: node" unless told otherwise, so send none with node:http.
    const res = await new Promise<{ status?: number; type?: string; body: string }>((resolve, reject) => {
      const req = request(`${sim.apiOrigin}/user`, { headers: { authorization: `Bearer ${token}` } }, (r) => {
        let body = "";
        r.on("data", (chunk: Buffer) => (body += chunk.toString()));
        r.on("end", () => resolve({ status: r.statusCode, type: r.headers["content-type"], body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(res).toMatchObject({ status: 403, type: "text/html" });
    expect(res.body).toContain("Please make sure your request has a User-Agent header.");
    expect((await get("/user", token, { "user-agent": "" })).status).toBe(403);
    expect((await get("/user", token)).status).toBe(200);
  });

  it("GET /user: public fields only without user/read:user, private ones with it", async () => {
    const narrow = (await login(sim, OAUTH_APP, { scope: "gist" })).access_token as string;
    const res = await get("/user", narrow);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-oauth-scopes")).toBe("gist");
    expect(res.headers.get("x-oauth-client-id")).toBe(OAUTH_APP.clientId);
    expect(res.headers.get("x-ratelimit-limit")).toBe("5000");
    expect(res.headers.get("x-ratelimit-resource")).toBe("core");
    const user = (await res.json()) as Record<string, unknown>;
    expect(user).toMatchObject({ login: "octocat", id: 583231, email: "octocat@github.com", user_view_type: "public" });
    expect(user).not.toHaveProperty("plan");

    const wide = (await login(sim, OAUTH_APP, { scope: "read:user" })).access_token as string;
    expect(await (await get("/user", wide)).json()).toHaveProperty("plan");
    const ghu = (await login(sim, GITHUB_APP)).access_token as string;
    expect(await (await get("/user", ghu)).json()).toMatchObject({ user_view_type: "private" });
  });

  it("401 Bad credentials for an unknown token; Requires authentication without one", async () => {
    const bad = await get("/user", "gho_doesnotexist000000000000000000000000");
    expect(bad.status).toBe(401);
    expect(await bad.json()).toEqual({ message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
    expect((await get("/user")).status).toBe(401);
  });

  it("GET /user/emails needs user:email; HEAD / reports scopes; /rate_limit does not count", async () => {
    const token = (await login(sim, OAUTH_APP, { scope: "user" })).access_token as string;
    const emails = (await (await get("/user/emails", token)).json()) as Array<{ primary: boolean }>;
    expect(emails.some((e) => e.primary)).toBe(true);
    const head = await fetch(`${sim.apiOrigin}/`, { method: "HEAD", headers: { ...UA, authorization: `Bearer ${token}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get("x-oauth-scopes")).toBe("user");
    const before = (await (await get("/rate_limit", token)).json()) as { rate: { used: number } };
    const after = (await (await get("/rate_limit", token)).json()) as { rate: { used: number } };
    expect(after.rate.used).toBe(before.rate.used);
    const gist = (await login(sim, OAUTH_APP, { scope: "gist" })).access_token as string;
    expect((await get("/user/emails", gist)).status).toBe(404);
  });

  it("GET /user/memberships/orgs/{org}: active, not a member, OAuth App restriction, SAML", async () => {
    const token = (await login(sim, OAUTH_APP, { scope: "read:org" })).access_token as string;
    expect(await (await get("/user/memberships/orgs/octo-org", token)).json()).toMatchObject({ state: "active", role: "member" });
    expect((await get("/user/memberships/orgs/other-org", token)).status).toBe(404);
    const locked = await get("/user/memberships/orgs/locked-org", token);
    expect(locked.status).toBe(403);
    expect(((await locked.json()) as { message: string }).message).toContain("has enabled OAuth App access restrictions");
    const sso = await get("/user/memberships/orgs/sso-org", token);
    expect(sso.status).toBe(403);
    expect(sso.headers.get("x-github-sso")).toMatch(/^required; url=/);
    const noScope = (await login(sim, OAUTH_APP, { scope: "gist" })).access_token as string;
    expect((await get("/user/memberships/orgs/octo-org", noScope)).status).toBe(403);
  });

  it("/applications/{client_id}/token check, reset and delete with Basic client auth", async () => {
    const token = (await login(sim, OAUTH_APP, { scope: "gist" })).access_token as string;
    const basic = `Basic ${Buffer.from(`${OAUTH_APP.clientId}:${secretOf(OAUTH_APP)}`).toString("base64")}`;
    const call = (method: string, accessToken: string, auth = basic) =>
      fetch(`${sim.apiOrigin}/applications/${OAUTH_APP.clientId}/token`, {
        method,
        headers: { ...UA, authorization: auth, "content-type": "application/json" },
        body: JSON.stringify({ access_token: accessToken }),
      });
    expect((await call("POST", token, "Basic d3Jvbmc6d3Jvbmc=")).status).toBe(404);
    const check = await call("POST", token);
    expect(check.status).toBe(200);
    expect(await check.json()).toMatchObject({ token, scopes: ["gist"], token_last_eight: token.slice(-8), app: { client_id: OAUTH_APP.clientId } });
    const reset = (await (await call("PATCH", token)).json()) as { token: string };
    expect(reset.token).not.toBe(token);
    expect((await get("/user", token)).status).toBe(401);
    expect((await call("DELETE", reset.token)).status).toBe(204);
    expect((await get("/user", reset.token)).status).toBe(401);
    expect((await mcpPost(sim, reset.token, { jsonrpc: "2.0", id: 1, method: "tools/list" })).status).toBe(401);
    expect((await call("POST", reset.token)).status).toBe(404);
  });

  it("DELETE /applications/{client_id}/grant kills every token of that user and app", async () => {
    const a = (await login(sim, GITHUB_APP)).access_token as string;
    const b = await login(sim, GITHUB_APP);
    const res = await fetch(`${sim.apiOrigin}/applications/${GITHUB_APP.clientId}/grant`, {
      method: "DELETE",
      headers: { ...UA, authorization: `Basic ${Buffer.from(`${GITHUB_APP.clientId}:${secretOf(GITHUB_APP)}`).toString("base64")}` },
      body: JSON.stringify({ access_token: a }),
    });
    expect(res.status).toBe(204);
    expect((await get("/user", a)).status).toBe(401);
    expect((await get("/user", b.access_token as string)).status).toBe(401);
  });
});
