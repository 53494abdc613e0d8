import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginForm, TestBrowser } from "../support/browser.js";
import { callGetMe } from "../support/connect.js";
import {
  approveOnBrowser,
  DEVICE_CODE_GRANT,
  deviceAuthorizationRequest,
  enterCode,
  poll,
  registerDeviceClient,
  startDevice,
} from "../support/device-steps.js";
import { LOGIN } from "../support/config.js";
import { refreshFor, register, tokenRequest } from "../support/oauth-steps.js";
import { startStack, type Stack } from "../support/stack.js";

/** RFC 8628 end to end: a device client, the GitHub simulator upstream, the user on a scripted browser, the real MCP SDK client. */
describe("the device authorization grant (RFC 8628)", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack();
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const deviceClient = async () => (await registerDeviceClient(gw)).body.client_id;
  const wait = (seconds: number) => stack.clock.advance(seconds * 1000);

  it("advertises the device authorization endpoint and the grant (RFC 8628 §4)", async () => {
    const metadata = (await (await fetch(`${gw}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata.device_authorization_endpoint).toBe(`${gw}/device_authorization`);
    expect(metadata.grant_types_supported).toContain(DEVICE_CODE_GRANT);
  });

  it("registers a device-only client without redirect_uris; a browser client still needs them", async () => {
    const device = await registerDeviceClient(gw);
    expect(device.status).toBe(201);
    expect(device.body.grant_types).toEqual([DEVICE_CODE_GRANT, "refresh_token"]);
    expect(device.body.redirect_uris).toEqual([]);
    const browserClient = await registerDeviceClient(gw, { grant_types: ["authorization_code", "refresh_token"] });
    expect(browserClient.status).toBe(400);
    expect(browserClient.body.error_description).toContain("redirect_uris is required");
    const neither = await registerDeviceClient(gw, { grant_types: ["refresh_token"] });
    expect(neither.body.error).toBe("invalid_client_metadata");
  });

  it("answers §3.2: a high-entropy device code, an unambiguous XXXX-XXXX user code, the /device URIs, expiry and interval", async () => {
    const started = await startDevice(gw, await deviceClient());
    expect(started.device_code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(started.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(started.verification_uri).toBe(`${gw}/device`);
    expect(started.verification_uri_complete).toBe(`${gw}/device?user_code=${started.user_code}`);
    expect(started).toMatchObject({ expires_in: 600, interval: 5 });
  });

  it("refuses clients that may not use the grant, unknown clients, and resources or scopes it does not serve", async () => {
    const browserClient = (await register(gw)).client_id;
    const endpoint = `${gw}/device_authorization`;
    expect(await deviceAuthorizationRequest(endpoint, { client_id: browserClient })).toMatchObject({ status: 400, body: { error: "unauthorized_client" } });
    expect(await deviceAuthorizationRequest(endpoint, { client_id: "nobody" })).toMatchObject({ status: 400, body: { error: "invalid_client" } });
    const client = await deviceClient();
    expect(await deviceAuthorizationRequest(endpoint, { client_id: client, resource: "https://elsewhere.example/mcp" })).toMatchObject({
      status: 400,
      body: { error: "invalid_target" },
    });
    expect(await deviceAuthorizationRequest(endpoint, { client_id: client, scope: "bad\u0001scope" })).toMatchObject({
      status: 400,
      body: { error: "invalid_scope" },
    });
    // a browser client polling with some device code hears unauthorized_client, as for any grant it did not register
    expect((await poll(gw, browserClient, "x".repeat(43))).body.error).toBe("unauthorized_client");
  });

  it("a browser client cannot use /authorize with a device-only client id", async () => {
    const client = await deviceClient();
    const page = await new TestBrowser().request(`${gw}/authorize?response_type=code&client_id=${client}`);
    expect(page.status).toBe(400);
    expect(page.text).toContain("device authorization grant only");
  });

  it("runs the whole flow: pending, slow_down, the code entered, both sign-ins, tokens the SDK client uses, refresh, single use", async () => {
    const client = await deviceClient();
    const started = await startDevice(gw, client, { resource: stack.mcpUrl, scope: "read:user" });

    expect(await poll(gw, client, started.device_code)).toMatchObject({ status: 400, body: { error: "authorization_pending" } });
    // RFC 8628 §3.5: polled within the interval, slow_down, and the interval grows by 5 seconds each time
    const tooFast = await poll(gw, client, started.device_code);
    expect(tooFast).toMatchObject({ status: 400, body: { error: "slow_down" } });
    expect(tooFast.body.error_description).toContain("10 seconds");
    wait(5);
    expect((await poll(gw, client, started.device_code)).body.error_description).toContain("15 seconds");
    wait(15);
    expect((await poll(gw, client, started.device_code)).body.error).toBe("authorization_pending");
    // of parallel polls one is taken; the others hear slow_down
    wait(20);
    const together = await Promise.all(Array.from({ length: 4 }, () => poll(gw, client, started.device_code)));
    expect(together.map((r) => r.body.error).sort()).toEqual(["authorization_pending", "slow_down", "slow_down", "slow_down"]);

    const { screen1, end } = await approveOnBrowser(started.verification_uri_complete, started.user_code);
    // RFC 8628 §5.4: Screen 1 says a device asks, shows its code, and says to compare it
    expect(screen1.text).toContain("A device is asking for access.");
    expect(screen1.text).toContain(`<code class="user-code">${started.user_code}</code>`);
    expect(screen1.text).toContain("Approve only if this is the code your own device shows right now");
    expect(screen1.text).not.toContain('name="remember"');
    expect(end.status).toBe(200);
    expect(end.text).toContain("Device connected");
    expect(end.text).toContain("Return to your device");

    // approved: of parallel polls exactly one gets tokens, and nothing is revoked for it
    wait(60);
    const redeemed = await Promise.all(Array.from({ length: 4 }, () => poll(gw, client, started.device_code)));
    expect(redeemed.map((r) => r.status).sort()).toEqual([200, 400, 400, 400]);
    expect(redeemed.filter((r) => r.status === 400).map((r) => r.body.error)).toEqual(["slow_down", "slow_down", "slow_down"]);
    const granted = redeemed.find((r) => r.status === 200)!;
    expect(granted.body).toMatchObject({ token_type: "Bearer", scope: "read:user" });
    expect(granted.body.access_token).toContain("~");
    expect(granted.body.refresh_token).toContain("~");
    expect((await callGetMe(gw, granted.body.access_token!)).login).toBe("octocat");

    const refreshed = await refreshFor(gw, client, granted.body.refresh_token!);
    expect(refreshed.status).toBe(200);
    expect((await callGetMe(gw, refreshed.body.access_token!)).login).toBe("octocat");

    // single use: a second redemption is refused and, as a replayed code, ends the grant it started
    wait(60);
    expect(await poll(gw, client, started.device_code)).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect((await refreshFor(gw, client, refreshed.body.refresh_token!)).body.error).toBe("invalid_grant");
  });

  it("always shows Screen 1 for a device, even to a signed-in user who asked to remember the client (§5.4)", async () => {
    const client = await deviceClient();
    const browser = new TestBrowser({ "sec-fetch-site": "none" });
    const first = await startDevice(gw, client);
    const screen1 = await browser.request((await enterCode(browser, first.verification_uri, first.user_code)).location!);
    expect(screen1.text).not.toContain('name="remember"');
    // a hand-made post asking to remember anyway
    const approved = await browser.request(`${gw}/login`, { form: { ...loginForm(screen1.text)!, ...LOGIN, remember: "yes", decision: "approve" } });
    const end = await browser.walk(approved.location!, { redirectUri: "urn:never", ...LOGIN });
    expect("text" in end && end.text).toContain("Device connected");

    const second = await startDevice(gw, client);
    const again = await browser.request((await enterCode(browser, second.verification_uri, second.user_code)).location!);
    expect(again.status).toBe(200);
    expect(again.text).toContain("A device is asking for access.");
    expect(again.text).toContain("Signed in as");
  });

  it("answers access_denied once the user denies on Screen 1", async () => {
    const client = await deviceClient();
    const started = await startDevice(gw, client);
    const { end } = await approveOnBrowser(started.verification_uri, started.user_code, { decision: "deny" });
    expect(end.status).toBe(403);
    expect(end.text).toContain("You denied the request");
    expect(await poll(gw, client, started.device_code)).toMatchObject({ status: 400, body: { error: "access_denied" } });
  });

  it("answers expired_token after expires_in, and the expired code is refused on /device", async () => {
    const client = await deviceClient();
    const started = await startDevice(gw, client);
    wait(601);
    expect(await poll(gw, client, started.device_code)).toMatchObject({ status: 400, body: { error: "expired_token" } });
    expect((await enterCode(new TestBrowser(), `${gw}/device`, started.user_code)).status).toBe(400);
  });

  it("answers invalid_grant to another client's poll and to an unknown device code", async () => {
    const client = await deviceClient();
    const started = await startDevice(gw, client);
    expect(await poll(gw, await deviceClient(), started.device_code)).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect(await poll(gw, client, "A".repeat(43))).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect((await tokenRequest(gw, { grant_type: DEVICE_CODE_GRANT, client_id: client })).body.error).toBe("invalid_request");
  });
});
