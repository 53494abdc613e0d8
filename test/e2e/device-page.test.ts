import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TestBrowser } from "../support/browser.js";
import {
  approveOnBrowser,
  DEVICE_CODE_GRANT,
  deviceAuthorizationRequest,
  enterCode,
  poll,
  registerDeviceClient,
  startDevice,
} from "../support/device-steps.js";
import { mcpInitialize } from "../support/oauth-steps.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { startStack, type Stack } from "../support/stack.js";

/** The /device page (RFC 8628 §3.3, §5.1, §5.4) and the device endpoints of each issuer. */
describe("the /device page", () => {
  let stack: Stack;
  let gw: string;
  beforeEach(async () => {
    stack = await startStack();
    gw = stack.gateway.publicUrl;
  });
  afterEach(() => stack?.close());

  const newDevice = async () => startDevice(gw, (await registerDeviceClient(gw)).body.client_id);

  it("fills the code from verification_uri_complete but never sends it by itself (§5.4), under the pages' CSP", async () => {
    const started = await newDevice();
    const browser = new TestBrowser();
    const page = await browser.request(`${gw}/device?user_code=${started.user_code.toLowerCase()}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(page.headers.get("cache-control")).toContain("no-store");
    expect(page.text).toContain(`name="user_code" value="${started.user_code}"`);
    // opening the link started nothing: the code is still there to be entered once, by the user
    const entered = await enterCode(browser, `${gw}/device`, started.user_code);
    expect(entered.status).toBe(303);
    expect(entered.location).toMatch(new RegExp(`^${gw}/login\\?request=`));
    // a user code starts one sign-in only
    expect((await enterCode(new TestBrowser(), `${gw}/device`, started.user_code)).status).toBe(400);
  });

  it("answers malformed device requests with 4xx and the RFC's error, never a 5xx", async () => {
    const client = (await registerDeviceClient(gw)).body.client_id;
    const send = (path: string, body: string, type = "application/x-www-form-urlencoded") =>
      fetch(`${gw}${path}`, { method: "POST", headers: { "content-type": type }, body }).then(async (r) => ({ status: r.status, text: await r.text() }));
    // as at /token: a JSON body is no form, so no client is named (RFC 6749 §2.3.1, §5.2)
    const json = await send("/device_authorization", JSON.stringify({ client_id: client }), "application/json");
    expect([json.status, JSON.parse(json.text).error]).toEqual([401, "invalid_client"]);
    const twice = await send("/device_authorization", `client_id=${client}&client_id=${client}`);
    expect([twice.status, JSON.parse(twice.text).error]).toEqual([400, "invalid_request"]);
    const resources = await send("/device_authorization", `client_id=${client}&resource=a&resource=b`);
    expect([resources.status, JSON.parse(resources.text).error]).toEqual([400, "invalid_request"]);
    const codes = await send("/token", `grant_type=${encodeURIComponent(DEVICE_CODE_GRANT)}&client_id=${client}&device_code=a&device_code=b`);
    expect([codes.status, JSON.parse(codes.text).error]).toEqual([400, "invalid_request"]);
    const long = await send("/token", `grant_type=${encodeURIComponent(DEVICE_CODE_GRANT)}&client_id=${client}&device_code=${"x".repeat(5000)}`);
    expect([long.status, JSON.parse(long.text).error]).toEqual([400, "invalid_grant"]);

    const browser = new TestBrowser();
    const page = await browser.request(`${gw}/device?user_code[x]=1&user_code=2`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="user_code" value=""');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const posted = await fetch(`${gw}/device`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: Object.entries(browser.cookies(new URL(gw).host))
          .map(([k, v]) => `${k}=${v}`)
          .join("; "),
      },
      body: `csrf=${csrf}&user_code=BCDF-GHJK&user_code=CDFG-HJKL`,
    });
    expect(posted.status).toBe(400);
  });

  it("takes the code in any case, with or without the dash, spaces allowed", async () => {
    const started = await newDevice();
    const typed = ` ${started.user_code.replace("-", " ").toLowerCase()} `;
    expect((await enterCode(new TestBrowser(), `${gw}/device`, typed)).status).toBe(303);
  });

  it("refuses a post without this page's CSRF token, or sent from another site", async () => {
    const started = await newDevice();
    const browser = new TestBrowser();
    await browser.request(`${gw}/device`);
    expect((await browser.request(`${gw}/device`, { form: { csrf: "forged", user_code: started.user_code } })).status).toBe(403);
    const page = await browser.request(`${gw}/device`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const crossSite = await browser.request(`${gw}/device`, { form: { csrf, user_code: started.user_code }, headers: { "sec-fetch-site": "cross-site" } });
    expect(crossSite.status).toBe(403);
    // the refused posts used nothing up
    expect((await enterCode(browser, `${gw}/device`, started.user_code)).status).toBe(303);
  });

  it("stops guessing (§5.1): after 10 wrong codes from an address, 429, even for a right code, until the window passes", async () => {
    const started = await newDevice();
    const browser = new TestBrowser();
    for (let i = 0; i < 10; i++) expect((await enterCode(browser, `${gw}/device`, "BCDF-GHJK")).status).toBe(400);
    const limited = await enterCode(browser, `${gw}/device`, "BCDF-GHJK");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await enterCode(browser, `${gw}/device`, started.user_code)).status).toBe(429);
    stack.clock.advance(900_000);
    const fresh = await newDevice();
    expect((await enterCode(browser, `${gw}/device`, fresh.user_code)).status).toBe(303);
  });
});

describe("the /device page's limit on everyone's wrong codes", () => {
  let stack: Stack;
  afterEach(() => stack?.close());

  /** Open /device and send `typed`, both as from `address` (behind a trusted proxy). */
  const enterFrom = async (gw: string, address: string, typed: string) => {
    const browser = new TestBrowser();
    const headers = { "x-forwarded-for": address };
    const page = await browser.request(`${gw}/device`, { headers });
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    return browser.request(`${gw}/device`, { form: { csrf, user_code: typed }, headers });
  };

  it("stops guessing from many addresses (§5.1): after 300 wrong codes in all, no code is checked, a right one neither, until the window passes", async () => {
    stack = await startStack({ config: { trustProxy: "loopback" } });
    const gw = stack.gateway.publicUrl;
    const started = await startDevice(gw, (await registerDeviceClient(gw)).body.client_id);
    // 5 wrong codes from each of 60 /64s of one IPv6 /48: each far under its own limit of 10
    for (let net = 0; net < 60; net++)
      for (let i = 0; i < 5; i++) expect((await enterFrom(gw, `2001:db8:7:${net.toString(16)}::${i + 1}`, "BCDF-GHJK")).status).toBe(400);
    const limited = await enterFrom(gw, "198.51.100.200", started.user_code);
    expect(limited.status).toBe(429);
    expect(limited.text).toContain("not necessarily by you");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    stack.clock.advance(900_000);
    const fresh = await startDevice(gw, (await registerDeviceClient(gw)).body.client_id);
    expect((await enterFrom(gw, "198.51.100.200", fresh.user_code)).status).toBe(303);
  }, 60_000);
});

describe("device authorization at each upstream's issuer", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    stack = await startMultiStack();
  }, 60_000);
  afterAll(() => stack?.close());

  it("advertises /device_authorization/<name>, where the resource is implied and another one refused", async () => {
    const gw = stack.gateway.publicUrl;
    const metadata = (await (await fetch(`${gw}/.well-known/oauth-authorization-server/mcp/github`)).json()) as Record<string, string>;
    expect(metadata.device_authorization_endpoint).toBe(`${gw}/device_authorization/github`);
    const own = (await (await fetch(`${gw}/.well-known/oauth-authorization-server`)).json()) as Record<string, string>;
    expect(own.device_authorization_endpoint).toBe(`${gw}/device_authorization`);

    const client = (await registerDeviceClient(gw)).body.client_id;
    expect((await deviceAuthorizationRequest(metadata.device_authorization_endpoint!, { client_id: client })).status).toBe(200);
    const other = await deviceAuthorizationRequest(metadata.device_authorization_endpoint!, { client_id: client, resource: stack.urls.internal });
    expect(other).toMatchObject({ status: 400, body: { error: "invalid_target" } });
    // several upstreams and no resource: the gateway's own endpoint cannot tell which
    expect((await deviceAuthorizationRequest(`${gw}/device_authorization`, { client_id: client })).body.error).toBe("invalid_target");
    expect((await deviceAuthorizationRequest(`${gw}/device_authorization`, { client_id: client, resource: stack.urls.github })).status).toBe(200);
  });

  it("connects a device to an upstream without a sign-in of its own (an API key): the code is issued at Screen 1", async () => {
    const gw = stack.gateway.publicUrl;
    const client = (await registerDeviceClient(gw)).body.client_id;
    const { body: started } = await deviceAuthorizationRequest(`${gw}/device_authorization/internal`, { client_id: client });
    const { end } = await approveOnBrowser(started.verification_uri!, started.user_code!);
    expect(end.text).toContain("Device connected");
    stack.clock.advance(10_000);
    const granted = await poll(gw, client, started.device_code!);
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    expect((await mcpInitialize(stack.urls.internal, `Bearer ${granted.body.access_token}`)).status).toBe(200);
    expect((await mcpInitialize(stack.urls.github, `Bearer ${granted.body.access_token}`)).status).toBe(401);
  });
});
