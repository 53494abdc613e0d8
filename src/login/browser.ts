import { createHmac, randomBytes } from "node:crypto";
import type { Request, Response } from "express";
import { AUTHORIZATION_REQUEST_TTL, type AuthorizationRequest } from "../as/authorize.js";
import { safeEqual, sha256, type Keys, type KeySet } from "../crypto.js";
import { OAuthError } from "../errors.js";

declare module "express-session" {
  interface SessionData {
    /** The gateway user this browser signed in as: a session exists only once someone has. */
    user?: string;
  }
}

/** The public URL is https: browsers reach the pages over TLS, whatever the last hop says (docs/security.md WP5). */
export const servedOverTls = (issuer: string): boolean => issuer.startsWith("https:");

/** A cookie's name: with the `__Host-` prefix on https, so no other host or port can set or shadow it. */
export const cookieName = (base: string, https: boolean): string => (https ? `__Host-${base}` : base);

/**
 * The browser binding (RFC 6749 §10.12, RFC 9700 §4.7): a random cookie set at /authorize, whose
 * hash the pending request keeps, so that only the browser that started a request can see Screen 1
 * for it or post it. No store session is needed for it: sessions begin at sign-in.
 */
const bindingCookieName = (https: boolean): string => cookieName("mcp-gateway-browser", https);

const BINDING = /^[A-Za-z0-9_-]{43}$/;

/** Every well-formed value of the binding cookie the browser sent (a planted duplicate may come first). */
function bindingValues(req: Request, https: boolean): string[] {
  const name = bindingCookieName(https);
  return (req.headers.cookie ?? "")
    .split(";")
    .map((pair) => pair.trim().split("="))
    .filter(([k, v]) => k === name && v !== undefined && BINDING.test(v))
    .map(([, v]) => v!);
}

/** The browser's binding at /authorize: the one it has, or a new one that `keepBinding` sets once a request is stored. */
export function browserBinding(req: Request, https: boolean): { value: string; hash: string } {
  const value = bindingValues(req, https)[0] ?? randomBytes(32).toString("base64url");
  return { value, hash: sha256(value) };
}

/** Set (or refresh) the binding cookie for as long as the request it now binds may wait. */
export function keepBinding(res: Response, https: boolean, value: string): void {
  res.cookie(bindingCookieName(https), value, { httpOnly: true, sameSite: "lax", secure: https, path: "/", maxAge: AUTHORIZATION_REQUEST_TTL * 1000 });
}

/** Refuse a pending request this browser did not start (the binding is missing, another, or the request predates bindings). */
export function checkBinding(req: Request, https: boolean, request: AuthorizationRequest): void {
  const { browser } = request;
  if (!browser || !bindingValues(req, https).some((value) => safeEqual(sha256(value), browser)))
    throw new OAuthError(
      "access_denied",
      "This sign-in was started in another browser, or this browser has lost the cookie the gateway set when it began. Start again from your MCP client in this browser.",
      403,
    );
}

/** The session's user, while that user may still sign in (a users file may have dropped it since). */
export const sessionUser = (req: Request, users: ReadonlySet<string>): string | undefined => {
  const user = req.session?.user;
  return user !== undefined && users.has(user) ? user : undefined;
};

/**
 * Who may post Screen 1's form for a request: before sign-in, the browser the request is bound to;
 * after it, the signed-in session. A token of one never works for the other, so nothing issued
 * before a sign-in survives it (RFC 9700 §4.7) but the request approved in that very POST.
 */
export type CsrfHolder = { session: string } | { browser: string };

const csrfKey = (set: KeySet): Buffer => createHmac("sha256", set.cookie).update("mcp-oauth-gateway csrf").digest();

/** A CSRF token derived from the request and its holder: nothing is stored, and a reload of the page shows the same one. */
export function csrfToken(keys: Keys, requestId: string, holder: CsrfHolder, set: KeySet = keys.current): string {
  const subject = "session" in holder ? `session\0${holder.session}` : `browser\0${holder.browser}`;
  return createHmac("sha256", csrfKey(set)).update(`${subject}\0${requestId}`).digest("base64url");
}

/** Compared in constant time, under the current key or one being rotated out. */
export const csrfMatches = (keys: Keys, requestId: string, holder: CsrfHolder, given: unknown): boolean =>
  typeof given === "string" && keys.all.some((set) => safeEqual(given, csrfToken(keys, requestId, holder, set)));

/**
 * A form post the gateway's own page sent (RFC 9700 §4.7, W3C Fetch Metadata): a page on another port
 * of the gateway's host is same-site, not same-origin, and may have planted the gateway's cookies
 * (docs/security.md WP9), so its posts are refused whatever they carry. `Sec-Fetch-Site` decides where
 * the browser sends it; a browser too old to, sends `Origin` (the pages' `Referrer-Policy: same-origin`
 * keeps it from being "null" on their own posts). A client that sends neither is no browser page.
 */
export function postedFromHere(headers: { origin?: string; "sec-fetch-site"?: string | string[] }, origins: readonly string[]): boolean {
  const site = headers["sec-fetch-site"];
  if (site !== undefined) return site === "same-origin";
  return headers.origin === undefined || origins.includes(headers.origin.toLowerCase());
}
