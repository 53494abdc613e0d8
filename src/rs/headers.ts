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
  // and every claimsIdentity name: the gateway alone says who the user is (identity headers)
]);

/**
 * A header name as the most lenient upstream reads it: lower case (Node gives it so), `_` as `-`
 * (CGI-style servers read `X_MCP_Readonly` as `X-MCP-Readonly`).
 */
const normalised = (lowerName: string): string => (lowerName.includes("_") ? lowerName.replaceAll("_", "-") : lowerName);

/**
 * The identity headers' own families (oauth2-proxy's and common reverse proxies' conventions), which
 * the gateway alone sets: no operator header may name one (src/config/headers.ts). `_` counts as `-`. From
 * the client, these and the wider `claimsIdentity` families are all dropped.
 */
export function isIdentityHeader(lowerName: string): boolean {
  const name = normalised(lowerName);
  return (
    name.startsWith("x-forwarded-") ||
    name.startsWith("x-auth-request-") ||
    name === "forwarded" ||
    name === "x-real-ip" ||
    name === "remote-user" ||
    name === "x-remote-user"
  );
}

/**
 * docs/security.md MU10: the names by which reverse proxies and single-sign-on front ends tell a
 * server who the user is or where the request came from. An upstream may trust any of them, with
 * identity headers on or not, so none ever comes from the client. Names as `normalised` gives them.
 */
const CLAIMED_IDENTITY_NAMES = [
  "forwarded", // RFC 7239
  "x-real-ip",
  "true-client-ip", // Akamai, Cloudflare Enterprise
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "fastly-client-ip",
  "x-client-ip",
  "x-cluster-client-ip",
  "x-user",
  "x-email",
  "x-username",
  "x-auth-user",
  "x-principal",
  "x-userinfo", // Kong's OpenID Connect plugin
  "x-jwt-assertion", // WSO2 API Manager
  "x-id-token",
  "x-access-token",
  "client-ip",
  "x-originating-ip",
  "x-proxyuser-ip",
];
const CLAIMED_IDENTITY_PREFIXES = [
  "remote-", // Apache's and nginx's REMOTE_USER, Authelia's Remote-User, -Groups, -Email, -Name
  "x-remote-",
  "x-webauth-", // Grafana's auth proxy
  "x-forwarded-", // oauth2-proxy's -User, -Email, -Groups, -Preferred-Username; -For, -Host, -Proto
  "x-original-forwarded-",
  "x-auth-request-", // oauth2-proxy behind nginx auth_request
  "x-authenticated-",
  "x-user-",
  "x-amzn-oidc-", // AWS Application Load Balancer
  "x-goog-authenticated-", // Google Identity-Aware Proxy
  "x-goog-iap-",
  "x-ms-client-principal", // Azure App Service authentication
  "cf-access-", // Cloudflare Access
  "x-pomerium-",
  "x-authentik-",
  "x-vouch-",
  "tailscale-user-",
  "x-ssl-client-", // TLS client certificates as nginx and HAProxy pass them on
  "ssl-client-",
  "x-client-cert",
  "x-consumer-", // Kong: -Username, -ID, -Custom-ID, -Groups
  "x-credential-", // Kong: -Username, -Identifier
  "x-envoy-", // Envoy: -External-Address, -Original-Path, -Peer-Metadata
  "oidc-", // mod_auth_openidc: OIDC_CLAIM_*, OIDC_access_token, OIDC_id_token
  "x-ms-token-", // Azure App Service: X-MS-TOKEN-AAD-ID-TOKEN and the other providers' tokens
];
const CLAIMED_IDENTITY = new RegExp(`^(?:${CLAIMED_IDENTITY_NAMES.join("|")}|(?:${CLAIMED_IDENTITY_PREFIXES.join("|")}).*)$`);

/** Whether a client header, normalised, names the user or the client's address to an upstream (MU2, MU10). */
export const claimsIdentity = (normalisedName: string): boolean => CLAIMED_IDENTITY.test(normalisedName);

/**
 * docs/security.md MU10: what IIS, Spring and Rails take in place of the request's own method and
 * path; the gateway authorizes and relays the method and path it sees, so the client may not name others.
 */
const REQUEST_TARGET_OVERRIDES = new Set([
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-original-method",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);

/**
 * Names the gateway itself reads from the client and acts on (MU9's session binding, the body limit):
 * forwarded only as spelt, so that no other spelling (`mcp_session_id`) reaches an upstream that reads
 * it as the same header without the gateway's check.
 */
const READ_BY_GATEWAY = new Set(["mcp-session-id", "content-length"]);

/** Header names whose verdict one upstream's policy remembers: clients send a handful; any beyond are judged each time. */
const REMEMBERED_NAMES = 1000;

/**
 * Which client headers may go to one upstream, by lower-case name: none that is hop-by-hop, in
 * NOT_FORWARDED_UPSTREAM or REQUEST_TARGET_OVERRIDES, `claimsIdentity`, normalised one the gateway
 * itself sends there (docs/security.md MU10: the operator's fixed headers and credentials, and
 * Authorization), so that no client header stands beside the gateway's under another spelling
 * (`x_mcp_readonly` beside `x-mcp-readonly`), or another spelling of one READ_BY_GATEWAY (MU9).
 * Built once per upstream; verdicts are remembered per name.
 */
export function clientHeaderPolicy(fixed: Readonly<Record<string, string>>): (lowerName: string) => boolean {
  const gatewaySet = new Set(["authorization", ...Object.keys(fixed).map((name) => normalised(name.toLowerCase()))]);
  const verdicts = new Map<string, boolean>();
  return (lowerName) => {
    let forwarded = verdicts.get(lowerName);
    if (forwarded === undefined) {
      const n = normalised(lowerName);
      forwarded = !(
        HOP_BY_HOP.has(n) ||
        NOT_FORWARDED_UPSTREAM.has(n) ||
        REQUEST_TARGET_OVERRIDES.has(n) ||
        gatewaySet.has(n) ||
        claimsIdentity(n) ||
        (READ_BY_GATEWAY.has(n) && n !== lowerName)
      );
      if (verdicts.size < REMEMBERED_NAMES) verdicts.set(lowerName, forwarded);
    }
    return forwarded;
  };
}

/** Never passed back to the client, beyond hop-by-hop. */
const NOT_RETURNED = new Set([
  "set-cookie", // an upstream cookie would land on the gateway's origin
  "www-authenticate", // rewritten: the upstream's challenge names the upstream's authorization server
]);

/** Connection values seen, parsed: peers send the same one or two on every message (`keep-alive`). Bounded. */
const nominations = new Map<string, ReadonlySet<string>>();
const REMEMBERED_CONNECTIONS = 100;

/** RFC 9110 §7.6.1: the header names a Connection header lists are hop-by-hop too. */
function connectionNominated(headers: Record<string, unknown>): ReadonlySet<string> {
  const value = typeof headers.connection === "string" ? headers.connection : "";
  let names = nominations.get(value);
  if (names === undefined) {
    names = new Set(
      value
        .toLowerCase()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );
    if (nominations.size < REMEMBERED_CONNECTIONS) nominations.set(value, names);
  }
  return names;
}

/**
 * The client's end-to-end headers, the operator's fixed headers (`headers`, static credentials and
 * identity headers, which win over the client's), and the upstream half of the token when there is
 * one. Bodies are relayed unchanged, so Content-Length stays.
 */
export function requestHeadersForUpstream(
  incoming: IncomingHttpHeaders,
  upstreamAccessToken: string,
  fixed: Readonly<Record<string, string>> = {},
  forwardable: (lowerName: string) => boolean = clientHeaderPolicy(fixed),
): Record<string, string> {
  const nominated = incoming.connection === undefined ? undefined : connectionNominated(incoming);
  const out: Record<string, string> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || nominated?.has(name) || !forwardable(name)) continue;
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
