import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";

describe("github.com discovery (spec S1.1, S1.2)", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(() => sim.close());

  it("serves RFC 8414 metadata only at the path-inserted URL, without registration_endpoint", async () => {
    const res = await fetch(`${sim.webOrigin}/.well-known/oauth-authorization-server/login/oauth`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      issuer: `${sim.webOrigin}/login/oauth`,
      authorization_endpoint: `${sim.webOrigin}/login/oauth/authorize`,
      token_endpoint: `${sim.webOrigin}/login/oauth/access_token`,
      response_types_supported: ["code"],
      grant_types_supported: ["authorization_code", "refresh_token"],
      service_documentation: "https://docs.github.com/apps/creating-github-apps/registering-a-github-app/registering-a-github-app",
      code_challenge_methods_supported: ["S256"],
    });
    expect(body).not.toHaveProperty("registration_endpoint");
  });

  it.each(["/login/oauth/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"])(
    "QUIRK: %s is a 404 HTML page",
    async (path) => {
      const res = await fetch(`${sim.webOrigin}${path}`);
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("text/html");
    },
  );

  it("serves a useless OIDC document under /login/oauth (no authorize/token/userinfo)", async () => {
    const res = await fetch(`${sim.webOrigin}/login/oauth/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.issuer).toBe("https://github.com");
    expect(body.claims_supported).toEqual(["sub", "aud", "exp", "nbf", "iat", "iss", "act"]);
    expect(body).toHaveProperty("jwks_uri");
    for (const key of ["authorization_endpoint", "token_endpoint", "userinfo_endpoint"]) {
      expect(body).not.toHaveProperty(key);
    }
  });

  it("answers guessed dynamic client registration with 422 HTML", async () => {
    for (const path of ["/register", "/login/oauth/register"]) {
      const res = await fetch(`${sim.webOrigin}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["http://127.0.0.1/cb"] }),
      });
      expect(res.status).toBe(422);
      expect(res.headers.get("content-type")).toContain("text/html");
    }
  });

  it("has no CORS pre-flight on the OAuth endpoints", async () => {
    const res = await fetch(`${sim.webOrigin}/login/oauth/access_token`, { method: "OPTIONS" });
    expect(res.status).toBe(404);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("records every request with lower-cased headers and the full body", async () => {
    await fetch(`${sim.webOrigin}/login/oauth/access_token?x=1`, {
      method: "POST",
      headers: { "X-Probe": "yes", "content-type": "application/x-www-form-urlencoded" },
      body: "client_id=abc",
    });
    const last = sim.requests.at(-1);
    expect(last).toMatchObject({ origin: "web", method: "POST", path: "/login/oauth/access_token?x=1", body: "client_id=abc" });
    expect(last?.headers["x-probe"]).toBe("yes");
  });
});
