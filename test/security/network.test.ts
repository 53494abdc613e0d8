import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../src/crypto.js";
import type { Gateway } from "../../src/gateway.js";
import { storeKey } from "../../src/store/store.js";
import { TestBrowser } from "../support/browser.js";
import { callGetMe } from "../support/connect.js";
import { REDIRECT_URI, authorizeUrl, obtainCode, redeem, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";
import { startStack, type Stack } from "../support/stack.js";

const HOUR = 3600_000;

/** docs/security.md NA1–NA4: what a network attacker between gateway and upstream can (not) cost users. */
describe("network", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ mode: "github_app" });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const refresh = (url: string, token: string, clientId: string) =>
    tokenRequest(url, { grant_type: "refresh_token", refresh_token: token, client_id: clientId });
  const tokenCalls = () => stack.simulator.requests.filter((r) => r.path.startsWith("/login/oauth/access_token"));
  const upstreamRefreshes = () => tokenCalls().filter((r) => new URLSearchParams(r.body).get("grant_type") === "refresh_token").length;
  /** A grant whose GitHub App token has a minute left, so the next gateway refresh goes upstream. */
  const nearlyExpiredGrant = async () => {
    const c = await obtainCode(gw);
    const issued = await redeem(gw, c);
    expect(issued.status).toBe(200);
    stack.clock.advance(8 * HOUR - 60_000);
    return { clientId: c.clientId, tokens: issued.body };
  };

  describe("NA1", () => {
    /** The browser's trip up to the gateway's callback, which it has not yet delivered. */
    const upstreamCallback = async (browser: TestBrowser) => {
      const { client_id } = await register(gw);
      const url = authorizeUrl(gw, {
        response_type: "code",
        client_id,
        redirect_uri: REDIRECT_URI,
        code_challenge: pkce().challenge,
        code_challenge_method: "S256",
        state: "st",
      });
      return (await browser.authorize(url, { redirectUri: `${gw}/upstream/callback`, ...LOGIN })).href;
    };
    const expectRefused = async (browser: TestBrowser, callback: string) => {
      const page = await browser.request(callback);
      expect(page.status).toBe(400);
      expect(page.location).toBeUndefined(); // nothing goes to the client, least of all a code
      expect(page.headers.get("content-type")).toContain("text/html");
    };

    it("NA1 an upstream callback with an unknown, replayed or expired state is refused", async () => {
      const browser = new TestBrowser();
      const callback = await upstreamCallback(browser);
      const forged = new URL(callback);
      forged.searchParams.set("state", "a-state-the-gateway-never-issued");
      await expectRefused(browser, forged.href);
      const stripped = new URL(callback);
      stripped.searchParams.delete("state");
      await expectRefused(browser, stripped.href);

      const delivered = await browser.request(callback);
      expect(delivered.status).toBe(302);
      expect(new URL(delivered.location!).searchParams.get("code")).toBeTruthy();
      await expectRefused(browser, callback); // replayed

      const stale = await upstreamCallback(browser);
      stack.clock.advance(10 * 60_000 + 1000); // the upstream state lives 10 minutes
      await expectRefused(browser, stale);
    });
  });

  it("NA2 a transient upstream failure during refresh is retryable and keeps the grant", async () => {
    const { clientId, tokens } = await nearlyExpiredGrant();
    const calls = tokenCalls().length;
    const faults: [string, () => void][] = [
      ["a 502 with an HTML body", () => (stack.simulator.faults.tokenEndpoint5xx = 1)],
      ["a connection reset", () => (stack.simulator.faults.tokenEndpointReset = 1)],
    ];
    for (const [what, inject] of faults) {
      inject();
      const failed = await refresh(gw, tokens.refresh_token!, clientId);
      expect(failed.status, what).toBe(503);
      expect(failed.body.error, what).toBe("temporarily_unavailable");
      expect(Number(failed.headers.get("retry-after")), what).toBeGreaterThan(0);
    }
    expect(tokenCalls().length).toBe(calls + 2); // both failures really reached the upstream

    const retried = await refresh(gw, tokens.refresh_token!, clientId); // the same refresh token, once the upstream is back
    expect(retried.status).toBe(200);
    expect((await callGetMe(gw, retried.body.access_token!)).login).toBe(stack.simulator.users[0]!.login);
    expect((await refresh(gw, retried.body.refresh_token!, clientId)).status).toBe(200);
  });

  describe("NA3", () => {
    let second: Gateway | undefined;
    afterEach(async () => {
      await second?.close();
      second = undefined;
    });

    it("NA3 two concurrent refreshes of a GitHub App grant leave a working grant", async () => {
      // a second instance sharing the first one's store and public URL, as behind a load balancer
      second = await startTestGateway({
        mcpServers: { github: { url: stack.simulator.mcpUrl, oauth: { clientId: stack.app.clientId, clientSecret: stack.app.clientSecrets[0]! } } },
        atMcp: true,
        publicUrl: gw,
        clock: stack.clock,
        store: stack.gateway.store,
      });
      const instances = [gw, second.listenUrl, gw, second.listenUrl];

      const { clientId, tokens } = await nearlyExpiredGrant();
      const before = upstreamRefreshes();
      stack.simulator.faults.latencyMs = 300; // the duplicates arrive while the first upstream refresh is still under way
      const answers = await Promise.all(instances.map((url) => refresh(url, tokens.refresh_token!, clientId)));
      stack.simulator.faults.latencyMs = 0;
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(upstreamRefreshes()).toBe(before + 1); // the single-use GitHub App refresh token was spent once

      // every answer's access token works where it was issued
      for (const [i, answer] of answers.entries()) expect((await callGetMe(instances[i]!, answer.body.access_token!)).login).toBe("octocat");
      // one instance's simultaneous requests share its answer; the later instance forked the chain and
      // retired the other's refresh token (docs/security.md MC17), so one refresh token lives on
      expect([answers[2]!.body, answers[3]!.body]).toEqual([answers[0]!.body, answers[1]!.body]);
      const live = await Promise.all(answers.map((a) => stack.gateway.store.get(storeKey.refreshToken(sha256(a.body.refresh_token!.split("~")[0]!)))));
      expect(live.map(Boolean).sort()).toEqual([false, false, true, true]);
      const newest = live.findIndex(Boolean);

      stack.clock.advance(8 * HOUR);
      const later = await refresh(instances[newest]!, answers[newest]!.body.refresh_token!, clientId);
      expect(later.status).toBe(200);
      expect(upstreamRefreshes()).toBe(before + 2);
      expect((await callGetMe(instances[newest]!, later.body.access_token!)).login).toBe("octocat");
    });
  });

  it("NA4 a definitive upstream invalid_grant ends the grant", async () => {
    const { clientId, tokens } = await nearlyExpiredGrant();
    stack.simulator.revokeGrant(stack.app.clientId); // the user revoked the app at GitHub
    const before = upstreamRefreshes();
    const ended = await refresh(gw, tokens.refresh_token!, clientId);
    expect(ended.status).toBe(400);
    expect(ended.body.error).toBe("invalid_grant");
    expect(upstreamRefreshes()).toBe(before + 1);

    // the client hears the same at once on a retry and re-authorizes; the upstream is not asked again
    const again = await refresh(gw, tokens.refresh_token!, clientId);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
    expect(upstreamRefreshes()).toBe(before + 1);
    expect((await redeem(gw, await obtainCode(gw))).status).toBe(200);
  });
});
