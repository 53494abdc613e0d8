import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RATE_RULES } from "../../src/ratelimit.js";
import { TestBrowser, loginForm } from "../support/browser.js";
import { REDIRECT_URI, register, clientAuthorizeUrl } from "../support/manual.js";
import { LOGIN, startStack, type Stack } from "../support/stack.js";

const registration = (gw: string, address?: string) =>
  fetch(`${gw}/register`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(address ? { "x-forwarded-for": address } : {}) },
    body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }),
  });

/** Counters live in the store (rate:<rule>:<address>) and count per client address. */
describe("rate limits", () => {
  let direct: Stack;
  let behindProxy: Stack;
  beforeAll(async () => {
    [direct, behindProxy] = await Promise.all([startStack(), startStack({ args: ["--trust-proxy", "loopback"] })]);
  });
  afterAll(async () => {
    await direct?.close();
    await behindProxy?.close();
  });

  it(`refuses registration number ${RATE_RULES.register.limit + 1} from one address with 429 and Retry-After, and not another address's`, async () => {
    const gw = behindProxy.gateway.publicUrl;
    const statuses = [];
    for (let i = 0; i < RATE_RULES.register.limit; i++) statuses.push((await registration(gw, "198.51.100.7")).status);
    expect(new Set(statuses)).toEqual(new Set([201]));
    const refused = await registration(gw, "198.51.100.7");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe(String(RATE_RULES.register.windowSeconds));
    expect(await refused.json()).toMatchObject({
      error: "temporarily_unavailable",
      error_description: expect.stringContaining("Too many client registrations"),
    });
    expect((await registration(gw, "198.51.100.8")).status).toBe(201);
  });

  it("believes X-Forwarded-For only from a trusted proxy", async () => {
    const gw = direct.gateway.publicUrl;
    for (let i = 0; i < RATE_RULES.register.limit; i++) await registration(gw, `203.0.113.${i}`);
    // every request came from 127.0.0.1 whatever the header claimed, so the limit is reached
    expect((await registration(gw, "203.0.113.250")).status).toBe(429);
  });

  it(`refuses sign-in after ${RATE_RULES.loginFailure.limit} wrong passwords from one address, even with the right one`, async () => {
    const gw = behindProxy.gateway.publicUrl;
    const { client_id } = await register(gw);
    const browser = new TestBrowser();
    const start = await browser.request(clientAuthorizeUrl(gw, client_id, { state: "s" }));
    const page = await browser.request(start.location!);
    const form = loginForm(page.text)!;
    const post = (password: string, address: string) =>
      fetch(`${gw}/login`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie: page.headers.getSetCookie()[0]!.split(";")[0]!, "x-forwarded-for": address },
        body: new URLSearchParams({ ...form, username: LOGIN.username, password, decision: "approve" }).toString(),
        redirect: "manual",
      });
    for (let i = 0; i < RATE_RULES.loginFailure.limit; i++) expect((await post("wrong", "192.0.2.1")).status).toBe(401);
    const refused = await post(LOGIN.password, "192.0.2.1");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe(String(RATE_RULES.loginFailure.windowSeconds));
    expect(refused.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await refused.text()).toContain("Too many failed sign-ins");
    // another address signs in with the same form
    expect((await post(LOGIN.password, "192.0.2.2")).status).toBe(303);
  });
});
