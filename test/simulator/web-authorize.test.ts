import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type SimApp, type Simulator } from "../../src/simulator/index.js";
import { CALLBACK, GITHUB_APP, OAUTH_APP, authorizeRequest, login } from "./helpers.js";
import { pkce as pkcePair } from "../support/pkce.js";

const WEB_APP: SimApp = {
  kind: "oauth_app",
  clientId: "Ov23liExampleWebApp01",
  clientSecrets: ["0123456789abcdef0123456789abcdef01234567"],
  callbackUrls: ["http://example.com/path"],
  name: `<Evil & "App">`,
};
const STRICT_GH_APP: SimApp = {
  kind: "github_app",
  clientId: "Iv23liStrictGitHubApp",
  clientSecrets: ["89abcdef0123456789abcdef0123456789abcdef"],
  callbackUrls: ["https://app.example.com/cb", "http://127.0.0.1/gh/cb"],
};
const SUSPENDED: SimApp = { ...WEB_APP, clientId: "Ov23liSuspendedApp001", suspended: true };

const locationOf = (res: Response): URL | undefined => {
  const value = res.headers.get("location");
  return value ? new URL(value) : undefined;
};

describe("GET /login/oauth/authorize (spec S1.3)", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ apps: [OAUTH_APP, GITHUB_APP, WEB_APP, STRICT_GH_APP, SUSPENDED] });
  });
  afterAll(() => sim.close());

  it("404s an unknown or empty client_id", async () => {
    for (const clientId of ["", "Ov23liNoSuchApp000000"]) {
      const res = await authorizeRequest(sim, { client_id: clientId });
      expect(res.status).toBe(404);
      expect(res.headers.get("location")).toBeNull();
    }
  });

  it.each(["http://example.com/path", "http://example.com/path/subdir/other", "http://oauth.example.com/path", "http://oauth.example.com/path/subdir/other"])(
    "OAuth App accepts %s for callback http://example.com/path",
    async (redirectUri) => {
      const res = await authorizeRequest(sim, { client_id: WEB_APP.clientId, redirect_uri: redirectUri });
      expect(res.status).toBe(302);
      expect(locationOf(res)?.href.startsWith(`${redirectUri}?code=`)).toBe(true);
    },
  );

  it.each([
    "http://example.com/bar",
    "http://example.com/",
    "http://example.com/pathology",
    "http://example.com:8080/path",
    "http://oauth.example.com:8080/path",
    "http://example.org/path",
    "https://example.com/path",
  ])("OAuth App shows 'Be careful!' (200, no redirect) for %s", async (redirectUri) => {
    const res = await authorizeRequest(sim, { client_id: WEB_APP.clientId, redirect_uri: redirectUri });
    expect(res.status).toBe(200);
    expect(res.headers.get("location")).toBeNull();
    const page = await res.text();
    expect(page).toContain("Be careful!");
    expect(page).toContain("The redirect_uri is not associated with this application.");
  });

  it("lets a loopback callback use any port, but not another loopback name", async () => {
    const ok = await authorizeRequest(sim, { client_id: OAUTH_APP.clientId, redirect_uri: "http://127.0.0.1:49152/upstream/callback" });
    expect(locationOf(ok)?.port).toBe("49152");
    const other = await authorizeRequest(sim, { client_id: OAUTH_APP.clientId, redirect_uri: "http://localhost:49152/upstream/callback" });
    expect(other.status).toBe(200);
  });

  it("GitHub App: exact match only (loopback port free), no extra path or parameters", async () => {
    const exact = await authorizeRequest(sim, { client_id: STRICT_GH_APP.clientId, redirect_uri: "https://app.example.com/cb" });
    expect(exact.status).toBe(302);
    const loopback = await authorizeRequest(sim, { client_id: STRICT_GH_APP.clientId, redirect_uri: "http://127.0.0.1:7000/gh/cb" });
    expect(loopback.status).toBe(302);
    for (const bad of ["https://app.example.com/cb/sub", "https://app.example.com/cb?x=1", "https://sub.app.example.com/cb"]) {
      const res = await authorizeRequest(sim, { client_id: STRICT_GH_APP.clientId, redirect_uri: bad });
      expect(await res.text()).toContain("Be careful!");
    }
  });

  it("defaults to the first callback URL and echoes state byte-for-byte; no state, no state param", async () => {
    const res = await authorizeRequest(sim, { client_id: WEB_APP.clientId, state: "a b&c=d/é" });
    const location = locationOf(res);
    expect(location?.origin + (location?.pathname ?? "")).toBe("http://example.com/path");
    expect(location?.searchParams.get("state")).toBe("a b&c=d/é");
    const noState = locationOf(await authorizeRequest(sim, { client_id: WEB_APP.clientId }));
    expect(noState?.searchParams.has("state")).toBe(false);
  });

  it("appends to a redirect_uri that already has a query", async () => {
    const res = await authorizeRequest(sim, { client_id: WEB_APP.clientId, redirect_uri: "http://example.com/path?tenant=7" });
    expect(locationOf(res)?.search).toMatch(/^\?tenant=7&code=[0-9a-f]{20}$/);
  });

  it("rejects bad PKCE parameters with an HTML error page, never a redirect", async () => {
    const { challenge } = pkcePair();
    const cases: Array<Record<string, string>> = [
      { code_challenge: challenge, code_challenge_method: "plain" },
      { code_challenge_method: "S256" },
      { code_challenge: `${challenge}=`, code_challenge_method: "S256" },
      { code_challenge: "short" },
    ];
    for (const pkce of cases) {
      const res = await authorizeRequest(sim, { client_id: OAUTH_APP.clientId, redirect_uri: CALLBACK, ...pkce });
      expect(res.status).toBe(200);
      expect(res.headers.get("location")).toBeNull();
    }
  });

  it("sends a suspended app's users back with application_suspended", async () => {
    const res = await authorizeRequest(sim, { client_id: SUSPENDED.clientId, state: "s1" });
    expect(res.headers.get("location")).toBe(
      "http://example.com/path?error=application_suspended&error_description=Your+application+has+been+suspended.+Contact+support@github.com.&error_uri=/apps/building-integrations/setting-up-and-registering-oauth-apps/troubleshooting-authorization-request-errors/%23application-suspended&state=s1",
    );
  });

  it("normalizes scopes: commas and spaces, implied scopes and unknown names dropped", async () => {
    const token = await login(sim, OAUTH_APP, { scope: "user,user:email gist  nonsense:scope" });
    expect(token.scope).toBe("gist,user");
  });

  it("re-authorizing without scope yields the union granted so far; GitHub Apps ignore scope", async () => {
    const fresh = await startSimulator();
    try {
      await login(fresh, OAUTH_APP, { scope: "gist" });
      await login(fresh, OAUTH_APP, { scope: "read:org" });
      expect((await login(fresh, OAUTH_APP)).scope).toBe("gist,read:org");
    } finally {
      await fresh.close();
    }
    const app = await login(sim, GITHUB_APP, { scope: "repo" });
    expect(app.scope).toBe("");
  });
});

describe("consent modes", () => {
  it("auto-deny redirects with access_denied", async () => {
    const sim = await startSimulator({ consent: "auto-deny" });
    try {
      const res = await authorizeRequest(sim, { client_id: OAUTH_APP.clientId, redirect_uri: CALLBACK, state: "q" });
      expect(res.headers.get("location")).toBe(
        `${CALLBACK}?error=access_denied&error_description=The+user+has+denied+your+application+access.&error_uri=/apps/building-integrations/setting-up-and-registering-oauth-apps/troubleshooting-authorization-request-errors/%23access-denied&state=q`,
      );
    } finally {
      await sim.close();
    }
  });

  it("page mode renders an escaped form; Authorize redirects with a code, Cancel with access_denied", async () => {
    const sim = await startSimulator({ consent: "page", apps: [WEB_APP] });
    try {
      const decide = async (decision: string): Promise<URL | undefined> => {
        const page = await (await authorizeRequest(sim, { client_id: WEB_APP.clientId, scope: "gist", state: "st" })).text();
        expect(page).toContain("Authorize &#60;Evil &#38; &#34;App&#34;&#62;");
        expect(page).not.toContain("<Evil");
        const id = /name="authorization_request" value="([0-9a-f]+)"/.exec(page)?.[1] ?? "";
        const res = await fetch(`${sim.webOrigin}/login/oauth/authorize/decide`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ authorization_request: id, decision }),
          redirect: "manual",
        });
        return locationOf(res);
      };
      expect((await decide("cancel"))?.searchParams.get("error")).toBe("access_denied");
      const approved = await decide("authorize");
      expect(approved?.searchParams.get("code")).toMatch(/^[0-9a-f]{20}$/);
      expect(approved?.searchParams.get("state")).toBe("st");
      const again = await authorizeRequest(sim, { client_id: WEB_APP.clientId, scope: "gist" });
      expect(again.status).toBe(302);
    } finally {
      await sim.close();
    }
  });

  it("legacyRedirectMismatch quirk redirects to the registered callback instead", async () => {
    const sim = await startSimulator({ apps: [WEB_APP], quirks: { legacyRedirectMismatch: true } });
    try {
      const res = await authorizeRequest(sim, { client_id: WEB_APP.clientId, redirect_uri: "http://evil.test/path" });
      const location = locationOf(res);
      expect(location?.host).toBe("example.com");
      expect(location?.searchParams.get("error")).toBe("redirect_uri_mismatch");
    } finally {
      await sim.close();
    }
  });
});
