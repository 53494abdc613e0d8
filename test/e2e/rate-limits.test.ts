import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RATE_RULES } from "../../src/ratelimit.js";
import { REDIRECT_URI } from "../support/oauth-steps.js";
import { startStack, type Stack } from "../support/stack.js";

const registration = (gw: string, address?: string) =>
  fetch(`${gw}/register`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(address ? { "x-forwarded-for": address } : {}) },
    body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }),
  });

/** Counters live in the store (rate:<rule>:<address>) and count per client address. Sign-in limits: test/security/login.test.ts (WP6). */
describe("rate limits", () => {
  let direct: Stack;
  let behindProxy: Stack;
  beforeAll(async () => {
    [direct, behindProxy] = await Promise.all([startStack(), startStack({ config: { trustProxy: "loopback" } })]);
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
});
