import type { IncomingHttpHeaders } from "node:http";
import type { UpstreamIdentity } from "../upstream/identity.js";

/** RFC 9110 §7.6.1: connection-specific, meaningful for one hop only. */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);

/** Never forwarded upstream, beyond hop-by-hop. */
const NOT_FORWARDED_UPSTREAM = new Set([
  "authorization", // MCP Authorization §Token Passthrough: the client's token never leaves the gateway
  "cookie", // the gateway's own session cookie
  "host", // the dispatcher sets the upstream's
  "origin", // the browser origin is the client's business with the gateway, not the upstream's
  "referer",
  "accept-encoding", // event streams must arrive uncompressed to be relayed event by event
  "expect", // RFC 9110 §10.1.1: 100-continue is negotiated per connection; the body streams anyway
  // and every isIdentityHeader: the gateway alone says who the user is (identity headers)
]);

/**
 * Names upstreams take as who the user is or where the request came from (oauth2-proxy's and
 * common reverse proxies' conventions). Never from the client, whatever the case; `_` counts as `-`,
 * as CGI-style servers read `X-Forwarded_User` as `X-Forwarded-User`.
 */
export function isIdentityHeader(lowerName: string): boolean {
  const name = lowerName.includes("_") ? lowerName.replaceAll("_", "-") : lowerName;
  return (
    name.startsWith("x-forwarded-") ||
    name.startsWith("x-auth-request-") ||
    name === "forwarded" ||
    name === "x-real-ip" ||
    name === "remote-user" ||
    name === "x-remote-user"
  );
}

/** Never passed back to the client, beyond hop-by-hop. */
const NOT_RETURNED = new Set([
  "set-cookie", // an upstream cookie would land on the gateway's origin
  "www-authenticate", // rewritten: the upstream's challenge names the upstream's authorization server
]);

const connectionNominated = (headers: Record<string, unknown>): Set<string> =>
  new Set(
    (typeof headers.connection === "string" ? headers.connection : "")
      .toLowerCase()
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );

/**
 * The client's end-to-end headers, the operator's fixed headers (`headers`, static credentials and
 * identity headers, which win over the client's), and the upstream half of the token when there is
 * one. Bodies are relayed unchanged, so Content-Length stays.
 */
export function requestHeadersForUpstream(
  incoming: IncomingHttpHeaders,
  upstreamAccessToken: string,
  fixed: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const nominated = incoming.connection === undefined ? undefined : connectionNominated(incoming);
  const out: Record<string, string> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || HOP_BY_HOP.has(name) || NOT_FORWARDED_UPSTREAM.has(name) || isIdentityHeader(name) || nominated?.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  for (const name in fixed) out[name] = fixed[name]!;
  if (upstreamAccessToken) out.authorization = `Bearer ${upstreamAccessToken}`;
  return out;
}

/**
 * X-Forwarded-User, -Email and -Preferred-Username (as oauth2-proxy sends them): who the user is at
 * the upstream's sign-in (`signedInUpstream`: the grant holds a user's upstream token), or the gateway
 * user where the upstream has no sign-in of its own; never one for the other, as a gateway user name
 * is no account at the upstream. A value that is not plain visible ASCII is left out.
 */
export function identityHeaders(gatewayUser: string, identity: UpstreamIdentity | undefined, signedInUpstream: boolean): Record<string, string> {
  const candidates = signedInUpstream
    ? {
        "x-forwarded-user": identity?.login ?? identity?.sub,
        "x-forwarded-email": identity?.email,
        "x-forwarded-preferred-username": identity?.preferred_username ?? identity?.login,
      }
    : { "x-forwarded-user": gatewayUser, "x-forwarded-preferred-username": gatewayUser };
  return Object.fromEntries(
    Object.entries(candidates).filter((e): e is [string, string] => e[1] !== undefined && /^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$/.test(e[1])),
  );
}

export function responseHeadersForClient(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const nominated = upstream.connection === undefined ? undefined : connectionNominated(upstream);
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || HOP_BY_HOP.has(name) || NOT_RETURNED.has(name) || nominated?.has(name) || name.startsWith("access-control-")) continue;
    out[name] = value;
  }
  return out;
}
