import { expect } from "vitest";
import type { TestBrowser } from "./browser.js";
import { REDIRECT_URI } from "./manual.js";

/**
 * What a refused sign-in must look like (docs/upstreams.md, who may pass): a 403 page at
 * /upstream/callback whose link tells the client access_denied (RFC 6749 §4.1.2.1), with its state
 * and the gateway's iss (RFC 9207), and no code; the browser never reached the client on its own.
 * Returns the page's text.
 */
export function expectRefusal(
  end: { redirect: URL } | { url: string; status: number; text: string },
  browser: TestBrowser,
  expected: { state: string; issuer: string },
): string {
  if ("redirect" in end) throw new Error(`admitted: ${end.redirect.href}`);
  expect(end.url).toContain("/upstream/callback");
  expect(end.status).toBe(403);
  const link = /<a href="([^"]+)">Return to your MCP client<\/a>/.exec(end.text)?.[1]?.replaceAll("&amp;", "&");
  expect(link, end.text).toBeDefined();
  const back = new URL(link!);
  expect(back.href.startsWith(REDIRECT_URI)).toBe(true);
  expect(back.searchParams.get("error")).toBe("access_denied");
  expect(back.searchParams.get("state")).toBe(expected.state);
  expect(back.searchParams.get("iss")).toBe(expected.issuer);
  expect(back.searchParams.has("code")).toBe(false);
  expect(browser.visited.some((u) => u.startsWith(REDIRECT_URI))).toBe(false);
  return end.text;
}
