import { extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import * as oauth from "oauth4webapi";
import { shownUrl, type UpstreamConfig } from "../config.js";
import type { Fetch } from "./http.js";

/** What discovery learns about the upstream. */
export interface UpstreamMetadata {
  as: oauth.AuthorizationServer;
  /** The upstream's RFC 9728 `resource`, sent as RFC 8707 `resource` in its authorize and token requests. */
  resource: string;
  scopesSupported?: string[];
}

export interface DiscoveryOptions {
  fetch: Fetch;
  allowHttp: boolean;
}

const requestOptions = (o: DiscoveryOptions) => ({ [oauth.customFetch]: o.fetch, [oauth.allowInsecureRequests]: o.allowHttp });

/**
 * `--upstream-rs` → RFC 9728 metadata → `authorization_servers[0]` → RFC 8414 metadata with path
 * insertion, then OIDC discovery. Explicit endpoint flags skip all of it.
 */
export async function discoverUpstream(config: UpstreamConfig, o: DiscoveryOptions): Promise<UpstreamMetadata> {
  if (config.authorizationEndpoint && config.tokenEndpoint) {
    const issuer = config.issuer ?? new URL(config.authorizationEndpoint).origin;
    return { as: { issuer, authorization_endpoint: config.authorizationEndpoint, token_endpoint: config.tokenEndpoint }, resource: config.resource };
  }
  const { metadata: prm, unreachable } = await findResourceMetadata(config.resource, o);
  const issuer = config.issuer ?? prm?.authorization_servers?.[0];
  if (!issuer && unreachable) throw new Error(`${shownUrl(config.resource)} cannot be reached (${unreachable.message})`);
  if (!issuer)
    throw new Error(
      `${shownUrl(config.resource)} publishes no RFC 9728 metadata naming its authorization server: give its issuer (--upstream-as, or oauth.issuer in the config file), or its authorization and token endpoints`,
    );
  return {
    as: await findAuthorizationServer(issuer, o),
    resource: prm?.resource ?? config.resource,
    ...(prm?.scopes_supported ? { scopesSupported: prm.scopes_supported } : {}),
  };
}

/**
 * The upstream's RFC 9728 metadata: the URL its 401 names (RFC 9728 §5.1), else the path-inserted
 * one, else the root one. `unreachable` when not one of these requests got an answer.
 */
async function findResourceMetadata(resource: string, o: DiscoveryOptions): Promise<{ metadata?: oauth.ResourceServer; unreachable?: Error }> {
  const rs = new URL(resource);
  let answered = false;
  let failure: Error | undefined;
  const attempt = async (request: Promise<Response>): Promise<Response | undefined> => {
    try {
      const response = await request;
      answered = true;
      return response;
    } catch (error) {
      failure = error as Error;
      return undefined;
    }
  };
  const candidates: URL[] = [];
  const ping = await attempt(unauthenticatedPing(rs, o));
  const advertised = ping && extractWWWAuthenticateParams(ping).resourceMetadataUrl;
  // RFC 9728 §7.7 / checklist G8: only follow a metadata URL on the upstream's own origin
  if (advertised && advertised.origin === rs.origin) candidates.push(advertised);
  candidates.push(new URL(`/.well-known/oauth-protected-resource${rs.pathname.replace(/^\/$/, "")}`, rs.origin));
  candidates.push(new URL("/.well-known/oauth-protected-resource", rs.origin));
  for (const url of candidates) {
    const response = await attempt(o.fetch(url.href, { method: "GET", headers: { accept: "application/json" } }));
    if (!response?.ok) continue;
    const metadata = await acceptResourceMetadata(rs, url, response);
    if (metadata) return { metadata };
  }
  return !answered && failure ? { unreachable: failure } : {};
}

/** Answers to an unauthenticated `ping` from a server that took it without credentials: a result, or a complaint about the request itself (no session, method, media type). */
const ANSWERED_WITHOUT_CREDENTIALS = new Set([400, 404, 405, 406, 415]);

/**
 * `detect`: an upstream that refuses an unauthenticated request (401, or 403) wants OAuth; one that
 * answers it (2xx, or a complaint about the request) needs no credentials. Throws when the upstream
 * cannot be reached or cannot answer now (3xx, 408, 429, 5xx), so the next use asks again.
 */
export async function detectUpstreamAuth(resource: string, o: DiscoveryOptions): Promise<"oauth" | "none"> {
  const { status } = await unauthenticatedPing(new URL(resource), o);
  if (status === 401 || status === 403) return "oauth";
  if ((status >= 200 && status < 300) || ANSWERED_WITHOUT_CREDENTIALS.has(status)) return "none";
  throw new Error(`the upstream answered HTTP ${status} to an unauthenticated request, which tells neither way`);
}

async function unauthenticatedPing(rs: URL, o: DiscoveryOptions): Promise<Response> {
  const response = await o.fetch(rs.href, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
  });
  await response.body?.cancel();
  return response;
}

/**
 * RFC 9728 §3.3: the `resource` must be the one we asked about. Tolerate a trailing-slash
 * difference (GitHub has served `…/mcp` for `…/mcp/`), and the root document describing the origin.
 */
async function acceptResourceMetadata(rs: URL, from: URL, response: Response): Promise<oauth.ResourceServer | undefined> {
  const expected = from.pathname === "/.well-known/oauth-protected-resource" ? [new URL(rs.origin)] : [rs, toggleSlash(rs)];
  for (const candidate of expected) {
    try {
      return await oauth.processResourceDiscoveryResponse(candidate, response.clone());
    } catch {
      /* try the next spelling */
    }
  }
  return undefined;
}

const toggleSlash = (u: URL) => new URL(u.href.endsWith("/") ? u.href.slice(0, -1) : `${u.href}/`);

async function findAuthorizationServer(issuer: string, o: DiscoveryOptions): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  const failures: string[] = [];
  for (const algorithm of ["oauth2", "oidc"] as const) {
    try {
      const response = await oauth.discoveryRequest(url, { algorithm, ...requestOptions(o) });
      const as = await oauth.processDiscoveryResponse(url, response);
      if (as.authorization_endpoint && as.token_endpoint) return as;
      failures.push(`${algorithm}: no authorization or token endpoint`);
    } catch (error) {
      failures.push(`${algorithm}: ${(error as Error).message}`);
    }
  }
  throw new Error(
    `cannot discover the upstream authorization server ${issuer} (${failures.join("; ")}): give its authorization and token endpoints (--upstream-authorize-endpoint and --upstream-token-endpoint, or oauth.authorizationEndpoint and oauth.tokenEndpoint in the config file)`,
  );
}
