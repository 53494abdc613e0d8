import type { RedirectUriPolicy } from "./clients.js";

/**
 * Redirect URIs (OAuth 2.1 §2.3, RFC 8252 §7): which are accepted, in which form they are kept, and
 * when a requested one matches a registered one.
 */

/**
 * Private-use schemes of MCP clients in use that are not in reverse-domain form (RFC 8252 §7.1 wants
 * one). Any other scheme without a period is refused: it may be an operating system's or a
 * browser's (`ms-msdt:`, `search-ms:`, `chrome:`, `itms-services:`), which a code must never reach.
 */
export const CLIENT_APP_SCHEMES: ReadonlySet<string> = new Set(["cursor", "vscode", "vscode-insiders", "claude", "windsurf"]);

/**
 * OAuth 2.1 §2.3 and RFC 8252 §7: absolute, no fragment, no userinfo; https, loopback http, or a
 * private-use scheme: reverse-domain (RFC 8252 §7.1, `com.example.app:/cb`) or a known MCP client's.
 * Written so that what a person reads is what the URL parser makes of it (misleadingForm).
 */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.length > 2000) return "is too long";
  // the URL parser drops or rewrites these (a backslash is a slash in http URLs): the URI used would not be the one shown
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\x00-\x20\x7f\\]/.test(uri)) return "must not contain spaces, control characters or backslashes";
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return "is not an absolute URI";
  }
  if (u.hash || uri.includes("#")) return "must not contain a fragment";
  if (uri.includes("*")) return "must not contain a wildcard";
  if (u.username || u.password) return "must not contain userinfo (user@host)";
  const scheme = u.protocol.slice(0, -1);
  if (scheme === "http" && !isLoopbackRedirectHost(u.hostname)) return "must use https unless it is a loopback address";
  if (scheme !== "http" && scheme !== "https" && !scheme.includes(".") && !CLIENT_APP_SCHEMES.has(scheme))
    return `must use https, loopback http, a reverse-domain app scheme (com.example.app:/callback) or an MCP client's own (${[...CLIENT_APP_SCHEMES].join(", ")})`;
  return misleadingForm(uri, u);
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { "http:": "80", "https:": "443" };

/** Why the URL parser's reading of `uri` is not what it shows (MC30); the harmless rest is only canonicalised. */
function misleadingForm(uri: string, u: URL): string | undefined {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri)?.[1];
  // `https:evil.example/cb` and `https:///evil.example/cb` are both read as https://evil.example/cb
  if (DEFAULT_PORTS[u.protocol] !== undefined && !authority) return `must be written as ${u.protocol}//host/path`;
  if (authority !== undefined) {
    const written = authority.toLowerCase();
    if (written !== u.host.toLowerCase() && written !== `${u.hostname}:${DEFAULT_PORTS[u.protocol] ?? ""}`.toLowerCase())
      return `must name its host as the URL parser reads it (${u.host.slice(0, 200) || "no host"})`;
  }
  const path = uri.slice(u.protocol.length + (authority === undefined ? 0 : 2 + authority.length)).split("?")[0] ?? "";
  if (path.split("/").some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) return "must not contain . or .. path segments";
  return undefined;
}

/** MC28: a redirect to the gateway itself would be a same-origin navigation chosen by whoever registered it. */
export function gatewayOriginProblem(uri: string, gatewayOrigins: readonly string[] | undefined): string | undefined {
  return onGatewayOrigin(new URL(uri), gatewayOrigins ?? []) ? "is this gateway's own address, which is never a redirect target" : undefined;
}

/** On the gateway's own origin; for a loopback one, under any loopback name of its port (src/origins.ts). */
function onGatewayOrigin(u: URL, gatewayOrigins: readonly string[]): boolean {
  const port = (url: URL) => url.port || DEFAULT_PORTS[url.protocol];
  return gatewayOrigins.some((origin) => {
    const g = new URL(origin);
    return g.origin === u.origin || (isLoopbackRedirectHost(g.hostname) && isLoopbackRedirectHost(u.hostname) && port(g) === port(u));
  });
}

/** `--redirect-uri-allow`: a prefix ending in a host matches only that host, never `host.evil.example`. */
export function allowlistProblem(uri: string, allow: readonly string[]): string | undefined {
  if (allow.length === 0) return undefined;
  const allowed = allow.some((entry) => {
    if (entry === "loopback") return LOOPBACK_REDIRECT.test(uri);
    if (!uri.startsWith(entry)) return false;
    const endsAtHost = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+$/i.test(entry);
    return !endsAtHost || uri.length === entry.length || "/?:".includes(uri[entry.length]!);
  });
  return allowed ? undefined : "is not allowed by this gateway's --redirect-uri-allow (MCP_GATEWAY_REDIRECT_URI_ALLOW)";
}

const isLoopbackRedirectHost = (hostname: string) => hostname === "localhost" || hostname === "127.0.0.1" || hostname === "[::1]";

/**
 * OAuth 2.1 §4.1.1 / RFC 8252 §7.3: exact match of the canonical forms, except that a loopback
 * redirect URI matches on any port. A requested URI the registration would refuse never matches,
 * nor one on the gateway's own origin (MC28), which a loopback URI on "any port" could name.
 */
export function redirectUriMatches(registered: string, requested: string, policy: Pick<RedirectUriPolicy, "gatewayOrigins"> = {}): boolean {
  if (redirectUriProblem(requested) !== undefined) return false;
  const canonical = new URL(requested).href;
  if (onGatewayOrigin(new URL(canonical), policy.gatewayOrigins ?? [])) return false;
  // a record from before canonical storage holds the URI as it was sent
  const stored = URL.canParse(registered) ? new URL(registered).href : registered;
  if (stored === canonical) return true;
  // Compared as strings with only the port taken out: no further normalisation of the path or query.
  const r = LOOPBACK_REDIRECT.exec(stored);
  const q = LOOPBACK_REDIRECT.exec(canonical);
  return !!r && !!q && r[1] === q[1] && (r[3] ?? "") === (q[3] ?? "");
}

const LOOPBACK_REDIRECT = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?([/?][^#]*)?$/;
