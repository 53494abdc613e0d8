import { randomBytes } from "node:crypto";
import { fetch } from "undici";
import { TestBrowser } from "./browser.js";
import { pkce } from "./pkce.js";
import { initializeMessage, mcpHeaders } from "./mcp-calls.js";
import { LOGIN } from "./config.js";

/**
 * The client's side of OAuth against an MCP URL, walked the way every MCP client walks it
 * (../shared/reference/clients.md): the 401 challenge, the protected-resource metadata it names, the
 * authorization server that names, registration or a Client ID Metadata Document, the browser step
 * (read from the Location, never followed), and the token requests.
 */

// ---- discovery -------------------------------------------------------------------------------------

export interface ResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
}

export interface ServerMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  registration_endpoint: string;
  grant_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  client_id_metadata_document_supported?: boolean;
  scopes_supported?: string[];
}

export interface Discovered {
  /** The 401's WWW-Authenticate header, as sent. */
  challenge: string;
  /** Its `scope` parameter, when it has one. */
  challengeScope?: string;
  resourceMetadataUrl: string;
  resource: ResourceMetadata;
  /** RFC 8414 metadata of `resource.authorization_servers[0]`, fetched at its path-inserted URL. */
  server: ServerMetadata;
  serverMetadataUrl: string;
}

/**
 * MCP Authorization §Authorization Server Discovery: POST to the MCP URL without a token, follow the
 * 401's `resource_metadata` (RFC 9728 §5.1), then the first authorization server's RFC 8414 metadata
 * (§3.1 path insertion). Throws, with what was received, at the first step that fails.
 */
export async function discover(mcpUrl: string): Promise<Discovered> {
  const first = await fetch(mcpUrl, { method: "POST", headers: mcpHeaders(), body: JSON.stringify(initializeMessage("2025-06-18")), redirect: "manual" });
  const challenge = first.headers.get("www-authenticate") ?? "";
  if (first.status !== 401) throw new Error(`POST ${mcpUrl} without a token: expected 401, got ${first.status} ${first.headers.get("location") ?? ""}`);
  const metadataUrls = [...challenge.matchAll(/resource_metadata="([^"]*)"/g)].map((m) => m[1]!);
  if (metadataUrls.length !== 1) throw new Error(`expected one resource_metadata in the challenge, got: ${challenge}`);
  const resourceMetadataUrl = metadataUrls[0]!;
  const resource = await getJson<ResourceMetadata>(resourceMetadataUrl);
  const issuer = resource.authorization_servers?.[0];
  if (!issuer) throw new Error(`no authorization_servers in ${JSON.stringify(resource)}`);
  const u = new URL(issuer);
  const serverMetadataUrl = `${u.origin}/.well-known/oauth-authorization-server${u.pathname === "/" ? "" : u.pathname}`;
  const server = await getJson<ServerMetadata>(serverMetadataUrl);
  if (server.issuer !== issuer) throw new Error(`RFC 8414 §3.3: metadata at ${serverMetadataUrl} names issuer ${server.issuer}, not ${issuer}`);
  const challengeScope = /scope="([^"]*)"/.exec(challenge)?.[1];
  return { challenge, ...(challengeScope ? { challengeScope } : {}), resourceMetadataUrl, resource, server, serverMetadataUrl };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

// ---- registration ------------------------------------------------------------------------------------

/** What a replayed client answers to: public (`none`), with a secret, or with a signed assertion. */
export type ClientAuthentication =
  | { method: "none" }
  | { method: "client_secret_post" | "client_secret_basic"; secret: string }
  /** RFC 7523 §2.2: a fresh signed JWT for each request to `tokenEndpoint`. */
  | { method: "private_key_jwt"; assertion: (tokenEndpoint: string) => Promise<string> };

export interface Client {
  clientId: string;
  auth: ClientAuthentication;
}

/** RFC 7591 §3: POST the client's own registration body; the status and the body as they came. */
export async function registrationRequest(server: ServerMetadata, body: Record<string, unknown>) {
  const response = await fetch(server.registration_endpoint, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> & { client_id: string; client_secret?: string } };
}

/** Register, failing with the gateway's answer unless it is 201; the client as the response defines it. */
export async function registered(server: ServerMetadata, body: Record<string, unknown>): Promise<Client & { information: Record<string, unknown> }> {
  const { status, body: information } = await registrationRequest(server, body);
  if (status !== 201) throw new Error(`registration refused: ${status} ${JSON.stringify(information)}`);
  const method = (information.token_endpoint_auth_method as string | undefined) ?? "client_secret_basic";
  const auth: ClientAuthentication =
    method === "none" ? { method: "none" } : { method: method as "client_secret_post" | "client_secret_basic", secret: information.client_secret! };
  return { clientId: information.client_id, auth, information };
}

// ---- authorization ---------------------------------------------------------------------------------

/** An authorization request sent to the browser, and what the client keeps until the code comes back. */
export interface PendingAuthorization {
  url: string;
  redirectUri: string;
  state: string;
  verifier: string;
}

/**
 * The authorization request exactly as given: PKCE S256 and a random state are added, and parameters
 * set to undefined are left out (a client that sends no `resource` sends no `resource`).
 */
export function authorizationRequest(
  endpoint: string,
  params: { client_id: string; redirect_uri: string } & Record<string, string | undefined>,
): PendingAuthorization {
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString("base64url");
  const url = new URL(endpoint);
  const all: Record<string, string | undefined> = { response_type: "code", code_challenge: challenge, code_challenge_method: "S256", state, ...params };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
  return { url: url.href, redirectUri: params.redirect_uri, state, verifier };
}

export interface AuthorizationResponse {
  /** Where the gateway sent the browser back to, read from the Location header (never followed). */
  redirect: URL;
  code: string;
  state: string | null;
  iss: string | null;
}

/**
 * The person signs in to the gateway, approves, and approves at the (simulated) GitHub. The walk ends
 * at the redirect to the client, which is read and not followed: a loopback listener, an app scheme and
 * claude.ai or chatgpt.com are the client's, not the test's.
 */
export async function signIn(request: PendingAuthorization, browser = new TestBrowser()): Promise<AuthorizationResponse> {
  const redirect = await browser.authorize(request.url, { redirectUri: request.redirectUri, ...LOGIN });
  const code = redirect.searchParams.get("code");
  if (!code) throw new Error(`no code in ${redirect.href}`);
  return { redirect, code, state: redirect.searchParams.get("state"), iss: redirect.searchParams.get("iss") };
}

/** What a client puts in its authorization request besides its id; `resource: undefined` sends none. */
export interface SignInParams {
  redirectUri: string;
  resource: string | undefined;
  scope?: string | undefined;
}

/**
 * The authorization request, the browser step, and the redirect checked: to `redirectUri`, with the
 * request's `state` (RFC 6749 §4.1.2) and the issuer as `iss` (RFC 9207 §2.4).
 */
export async function signedIn(found: Discovered, client: Client, params: SignInParams) {
  const request = authorizationRequest(found.server.authorization_endpoint, {
    client_id: client.clientId,
    redirect_uri: params.redirectUri,
    resource: params.resource,
    scope: params.scope,
  });
  const answer = await signIn(request);
  if (!answer.redirect.href.startsWith(`${params.redirectUri}?`)) throw new Error(`sent back to ${answer.redirect.href}, not to ${params.redirectUri}`);
  if (answer.state !== request.state || answer.iss !== found.server.issuer)
    throw new Error(`sent back with state ${answer.state} and iss ${answer.iss}, not ${request.state} and ${found.server.issuer}`);
  return { request, answer };
}

/** `signedIn`, then the code redeemed with the same `resource`, failing unless the answer is 200 with an access token. */
export async function signInAndRedeem(found: Discovered, client: Client, params: SignInParams) {
  const { request, answer } = await signedIn(found, client, params);
  const tokens = await redeemCode(found.server, client, request, answer.code, params.resource);
  return { request, tokens: tokenSet(tokens) };
}

// ---- token requests ----------------------------------------------------------------------------------

export interface TokenAnswer {
  status: number;
  body: { access_token?: string; refresh_token?: string; token_type?: string; expires_in?: number; scope?: string; error?: string; error_description?: string };
}

/** A 200 answer's tokens, or a failure with the answer as it came. */
export function tokenSet(answer: TokenAnswer): TokenAnswer["body"] & { access_token: string } {
  const { access_token } = answer.body;
  if (answer.status !== 200 || !access_token) throw new Error(`token request answered ${answer.status} ${JSON.stringify(answer.body)}`);
  return { ...answer.body, access_token };
}

/** POST to the token endpoint with the client's authentication added as its method puts it. */
export async function tokenRequest(server: ServerMetadata, client: Client, form: Record<string, string | undefined>): Promise<TokenAnswer> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
  const { auth } = client;
  if (auth.method === "client_secret_basic") {
    const enc = (s: string) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(client.clientId)}:${enc(auth.secret)}`).toString("base64")}`;
  } else {
    body.set("client_id", client.clientId);
    if (auth.method === "client_secret_post") body.set("client_secret", auth.secret);
    if (auth.method === "private_key_jwt") {
      body.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      body.set("client_assertion", await auth.assertion(server.token_endpoint));
    }
  }
  const response = await fetch(server.token_endpoint, { method: "POST", headers, body: body.toString() });
  return { status: response.status, body: (await response.json()) as TokenAnswer["body"] };
}

/** RFC 6749 §4.1.3 (with RFC 7636 and, when given, RFC 8707 `resource`). */
export const redeemCode = (server: ServerMetadata, client: Client, request: PendingAuthorization, code: string, resource?: string) =>
  tokenRequest(server, client, { grant_type: "authorization_code", code, code_verifier: request.verifier, redirect_uri: request.redirectUri, resource });

/** RFC 6749 §6. */
export const refreshWith = (server: ServerMetadata, client: Client, refreshToken: string, resource?: string) =>
  tokenRequest(server, client, { grant_type: "refresh_token", refresh_token: refreshToken, resource });
