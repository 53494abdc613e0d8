import { expect } from "vitest";
import type { TestBrowser } from "./browser.js";
import { REDIRECT_URI } from "./oauth-steps.js";

/**
 * What a refused sign-in must look like (docs/upstreams.md, who may pass): a page at
 * /upstream/callback (or /login, when no upstream leg began) whose link tells the client the error
 * (RFC 6749 §4.1.2.1), with its state and the gateway's iss (RFC 9207), and no code; the browser never
 * reached the client on its own. 403 for access_denied, 503 for temporarily_unavailable. Returns the page's text.
 */
export function expectRefusal(
  end: { redirect: URL } | { url: string; status: number; text: string },
  browser: TestBrowser,
  expected: { state: string; issuer: string; error?: "access_denied" | "temporarily_unavailable"; at?: string },
): string {
  if ("redirect" in end) throw new Error(`admitted: ${end.redirect.href}`);
  const error = expected.error ?? "access_denied";
  expect(end.url).toContain(expected.at ?? "/upstream/callback");
  expect(end.status).toBe(error === "access_denied" ? 403 : 503);
  const link = /<a href="([^"]+)">Return to your MCP client<\/a>/.exec(end.text)?.[1]?.replaceAll("&amp;", "&");
  expect(link, end.text).toBeDefined();
  const back = new URL(link!);
  expect(back.href.startsWith(REDIRECT_URI)).toBe(true);
  expect(back.searchParams.get("error")).toBe(error);
  // the reason is for the user's eyes: the client learns nothing of who the user is upstream
  expect(back.searchParams.get("error_description")).toMatch(
    /^The (user may not use|sign-in for) [^ ]+ (through this gateway|cannot go on now; try again shortly)\.$/,
  );
  expect(back.searchParams.get("state")).toBe(expected.state);
  expect(back.searchParams.get("iss")).toBe(expected.issuer);
  expect(back.searchParams.has("code")).toBe(false);
  expect(browser.visited.some((u) => u.startsWith(REDIRECT_URI))).toBe(false);
  return end.text;
}
