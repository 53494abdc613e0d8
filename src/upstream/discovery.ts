import { extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import * as oauth from "oauth4webapi";
import { shownUrl } from "../config/values.js";
import type { UpstreamConfig } from "../config/types.js";
import type { Fetch } from "./http.js";

/** What discovery learns about the upstream. */
export interface UpstreamMetadata {
  as: oauth.AuthorizationServer;
  /** The upstream's RFC 9728 `resource`, sent as RFC 8707 `resource` in its authorize and token requests. */
  resource: string;
  scopesSupported?: string[];
  /** The scope the upstream's 401 challenge named: MCP §Scope Selection Strategy asks for it first. */
  challengeScope?: string;
  /** How the authorization server was found, for the log. */
  found: string;
}

export interface DiscoveryOptions {
  fetch: Fetch;
  allowHttp: boolean;
  /** What every request to the MCP endpoint carries: the entry's fixed headers and static credentials. */
  headers?: Readonly<Record<string, string>>;
}

/** Each discovery request ends within this, body included: the gateway's own answers never wait on a slow upstream for long. */
export const DISCOVERY_TIMEOUT_MS = 5_000;

const requestOptions = (o: DiscoveryOptions) => ({
  [oauth.customFetch]: o.fetch,
  [oauth.allowInsecureRequests]: o.allowHttp,
  signal: () => AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
});

/**
 * `--upstream-rs` → RFC 9728 metadata → `authorization_servers[0]` → RFC 8414 metadata with path
 * insertion, then OIDC discovery. An upstream of the 2025-03-26 revision publishes no RFC 9728
 * metadata: its authorization server is at its own origin, described by RFC 8414 metadata there or,
 * without any, at the default endpoints `/authorize`, `/token` and `/register`. Explicit endpoint
 * flags skip all of it.
 */
export async function discoverUpstream(config: UpstreamConfig, o: DiscoveryOptions): Promise<UpstreamMetadata> {
  if (config.authorizationEndpoint && config.tokenEndpoint) {
    const issuer = config.issuer ?? new URL(config.authorizationEndpoint).origin;
    return {
      as: { issuer, authorization_endpoint: config.authorizationEndpoint, token_endpoint: config.tokenEndpoint },
      resource: config.resource,
      found: "the configured endpoints",
    };
  }
  const { metadata: prm, challengeScope } = await findResourceMetadata(config.resource, o, config.issuer !== undefined);
  const scopes = {
    ...(prm?.scopes_supported ? { scopesSupported: prm.scopes_supported } : {}),
    ...(challengeScope ? { challengeScope } : {}),
  };
  const issuer = config.issuer ?? prm?.authorization_servers?.[0];
  if (issuer) {
    const found = config.issuer ? `the configured issuer ${issuer}` : `its RFC 9728 metadata, naming ${issuer}`;
    return { as: await findAuthorizationServer(issuer, o), resource: prm?.resource ?? config.resource, ...scopes, found };
  }
  return { ...(await authorizationServerAtOrigin(config.resource, o)), resource: prm?.resource ?? config.resource, ...scopes };
}

/**
 * MCP 2025-03-26 §2.3: without RFC 9728 metadata, the MCP server's origin (path discarded) is the
 * authorization server: RFC 8414 metadata there, else the default endpoints (§2.3.3). Only an answer
 * that says there is no metadata leads to the defaults; an unreachable origin is a failure.
 */
async function authorizationServerAtOrigin(resource: string, o: DiscoveryOptions): Promise<Pick<UpstreamMetadata, "as" | "found">> {
  const origin = new URL(resource).origin;
  const response = await oauth.discoveryRequest(new URL(origin), { algorithm: "oauth2", ...requestOptions(o) });
  if (response.ok) {
    const as = await oauth.processDiscoveryResponse(new URL(origin), response);
    if (!as.authorization_endpoint || !as.token_endpoint) throw new Error(`the RFC 8414 metadata at ${origin} names no authorization or token endpoint`);
    return { as, found: `no RFC 9728 metadata: the RFC 8414 metadata at its origin (MCP 2025-03-26)` };
  }
  await response.body?.cancel();
  // only "there is none" leads to the defaults; a redirect, a refusal or a fault is no such answer
  if (!ABSENT.has(response.status)) throw new Error(`${origin}/.well-known/oauth-authorization-server answered HTTP ${response.status}`);
  return {
    as: {
      issuer: origin,
      authorization_endpoint: `${origin}/authorize`,
      token_endpoint: `${origin}/token`,
      registration_endpoint: `${origin}/register`,
    },
    found: `no RFC 9728 or RFC 8414 metadata: the default endpoints /authorize, /token and /register at its origin (MCP 2025-03-26)`,
  };
}

/**
 * The upstream's RFC 9728 metadata: the URL its 401 names (RFC 9728 §5.1), else the path-inserted
 * one, else the root one. None only when the upstream asked for credentials (401, 403), named no
 * metadata, and answered 404 or 410 for it: any other failure to fetch it (no answer, a redirect, 5xx)
 * is not taken for a 2025-03-26 server, so a passing fault never sends sign-ins to default endpoints.
 */
async function findResourceMetadata(
  resource: string,
  o: DiscoveryOptions,
  /** The issuer is configured: the metadata only adds the upstream's `resource` and scopes, and failing to fetch it is no failure. */
  optional: boolean,
): Promise<{ metadata?: oauth.ResourceServer; challengeScope?: string }> {
  const rs = new URL(resource);
  const failures: Error[] = [];
  let answered = false;
  const attempt = async (request: () => Promise<Response>): Promise<Response | undefined> => {
    try {
      const response = await request();
      answered = true;
      return response;
    } catch (error) {
      failures.push(error as Error);
      return undefined;
    }
  };
  const ping = await attempt(() => unauthenticatedPing(rs, o));
  const challenge = ping ? extractWWWAuthenticateParams(ping) : {};
  const challengeScope = challenge.scope ? { challengeScope: challenge.scope } : {};
  // RFC 9728 §7.7 / checklist G8: only follow a metadata URL on the upstream's own origin
  const advertised = challenge.resourceMetadataUrl?.origin === rs.origin ? challenge.resourceMetadataUrl : undefined;
  const candidates = [
    ...new Set([
      ...(advertised ? [advertised.href] : []),
      new URL(`/.well-known/oauth-protected-resource${rs.pathname.replace(/^\/$/, "")}`, rs.origin).href,
      new URL("/.well-known/oauth-protected-resource", rs.origin).href,
    ]),
  ].map((href) => new URL(href));
  let foreign: string | undefined;
  for (const url of candidates) {
    const init = { method: "GET", headers: { accept: "application/json" }, signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) };
    const response = await attempt(() => o.fetch(url.href, init));
    if (!response) continue;
    if (!response.ok) {
      await response.body?.cancel();
      if (!ABSENT.has(response.status)) failures.push(new Error(`${url.href} answered HTTP ${response.status}`));
      continue;
    }
    const body = await response.text().catch((error: unknown) => void failures.push(error as Error));
    if (body === undefined) continue;
    const found = await acceptResourceMetadata(rs, url, new Response(body, response));
    if (found && "accepted" in found) return { metadata: found.accepted, ...challengeScope };
    if (found) foreign ??= found.foreign;
  }
  // RFC 9728 §3.3: metadata for another resource is never used, and it is no sign of a server without metadata either
  if (optional) return challengeScope;
  if (foreign !== undefined) throw new Error(`${shownUrl(resource)} publishes RFC 9728 metadata for another resource (${foreign}), which must not be used`);
  if (!answered) throw new Error(`${shownUrl(resource)} cannot be reached (${failures[0]?.message ?? "no answer"})`);
  if (failures.length > 0)
    throw new Error(`the RFC 9728 metadata of ${shownUrl(resource)} cannot be fetched now (${failures.map((f) => f.message).join("; ")})`);
  if (advertised) throw new Error(`the 401 of ${shownUrl(resource)} names RFC 9728 metadata at ${advertised.href}, which it does not serve`);
  // a 2025-03-26 server is one that asked for credentials and has no RFC 9728 metadata
  if (ping?.status !== 401 && ping?.status !== 403)
    throw new Error(`${shownUrl(resource)} publishes no RFC 9728 metadata and did not ask for credentials (HTTP ${ping?.status ?? "no answer"})`);
  return challengeScope;
}

/** The answers that say a metadata document does not exist; any other failure is not taken to mean so. */
const ABSENT = new Set([404, 410]);

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

/** A `ping` with no user's credentials: only what every request to this upstream carries (its fixed headers and static credentials). */
async function unauthenticatedPing(rs: URL, o: DiscoveryOptions): Promise<Response> {
  const response = await o.fetch(rs.href, {
    method: "POST",
    signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
    headers: { ...o.headers, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
  });
  await response.body?.cancel();
  return response;
}

/**
 * RFC 9728 §3.3: the `resource` must be the one we asked about. Tolerate a trailing-slash
 * difference (GitHub has served `…/mcp` for `…/mcp/`), and the root document describing the origin.
 */
async function acceptResourceMetadata(rs: URL, from: URL, response: Response): Promise<{ accepted: oauth.ResourceServer } | { foreign: string } | undefined> {
  const expected = from.pathname === "/.well-known/oauth-protected-resource" ? [new URL(rs.origin)] : [rs, toggleSlash(rs)];
  for (const candidate of expected) {
    try {
      return { accepted: await oauth.processResourceDiscoveryResponse(candidate, response.clone()) };
    } catch {
      /* try the next spelling */
    }
  }
  const named = ((await response.json().catch(() => undefined)) as { resource?: unknown } | undefined)?.resource;
  return typeof named === "string" ? { foreign: named.slice(0, 200) } : undefined;
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
