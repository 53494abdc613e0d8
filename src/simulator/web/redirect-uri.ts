import type { SimApp } from "../options.js";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

const parse = (value: string): URL | undefined => {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
};

/**
 * The redirect URI GitHub will send the browser to, or undefined when `requested` is not allowed.
 * Absent `redirect_uri` means the first registered callback URL.
 */
export function resolveRedirectUri(app: SimApp, requested: string | null): string | undefined {
  const first = app.callbackUrls[0];
  if (requested === null || requested === "") return first;
  const allowed = app.callbackUrls.some((callback) => (app.kind === "oauth_app" ? oauthAppAllows(callback, requested) : githubAppAllows(callback, requested)));
  return allowed ? requested : undefined;
}

/** docs authorizing-oauth-apps "Redirect URLs": same host or a sub-domain, same port, path or a subdirectory. */
function oauthAppAllows(callback: string, requested: string): boolean {
  const cb = parse(callback);
  const rq = parse(requested);
  if (!cb || !rq || rq.username || rq.password) return false;
  if (cb.protocol !== rq.protocol) return false;
  const sameHost = cb.hostname === rq.hostname;
  if (!sameHost && !rq.hostname.endsWith(`.${cb.hostname}`)) return false;
  if (!portMatches(cb, rq, sameHost)) return false;
  const base = cb.pathname.replace(/\/$/, "");
  return rq.pathname === cb.pathname || rq.pathname.startsWith(`${base}/`);
}

/** docs about-the-user-authorization-callback-url: exact match, no extra parameters; loopback port is free. */
function githubAppAllows(callback: string, requested: string): boolean {
  if (callback === requested) return true;
  const cb = parse(callback);
  const rq = parse(requested);
  if (!cb || !rq || rq.username || rq.password) return false;
  return (
    LOOPBACK_HOSTS.has(cb.hostname) &&
    cb.protocol === rq.protocol &&
    cb.hostname === rq.hostname &&
    cb.pathname === rq.pathname &&
    cb.search === rq.search &&
    cb.hash === rq.hash
  );
}

/** docs oauth-login.md: for loopback redirects GitHub does not require the callback port to match. */
const portMatches = (cb: URL, rq: URL, sameHost: boolean): boolean => cb.port === rq.port || (sameHost && LOOPBACK_HOSTS.has(cb.hostname));
