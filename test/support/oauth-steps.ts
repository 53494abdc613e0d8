import { randomBytes } from "node:crypto";
import { TestBrowser, loginForm } from "./browser.js";
import { LOGIN } from "./config.js";
import { pkce } from "./pkce.js";

export const REDIRECT_URI = "http://127.0.0.1:33418/callback";

export async function register(gatewayUrl: string, metadata: Record<string, unknown> = {}) {
  const response = await fetch(`${gatewayUrl}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none", client_name: "manual client", ...metadata }),
  });
  if (response.status !== 201) throw new Error(`registration failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as { client_id: string; client_secret?: string };
}

export function authorizeUrl(gatewayUrl: string, params: Record<string, string>): string {
  const url = new URL(`${gatewayUrl}/authorize`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

/** A new authorization request of `clientId` (random state, PKCE S256, REDIRECT_URI, `extra` on top): its URL, and what the client keeps. */
export function authorizationRequest(gatewayUrl: string, clientId: string, extra: Record<string, string> = {}) {
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString("hex");
  const params = { response_type: "code", client_id: clientId, redirect_uri: REDIRECT_URI, code_challenge: challenge, code_challenge_method: "S256", state };
  return { url: authorizeUrl(gatewayUrl, { ...params, ...extra }), verifier, state };
}

/** The authorization request a PKCE client sends (S256, REDIRECT_URI, state "st"), with `extra` on top. */
export const clientAuthorizeUrl = (gatewayUrl: string, clientId: string, extra: Record<string, string> = {}): string =>
  authorizeUrl(gatewayUrl, {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: pkce().challenge,
    code_challenge_method: "S256",
    state: "st",
    ...extra,
  });

/** Register a public client and take it through the browser step by hand: returns a fresh gateway code. */
export async function obtainCode(
  gatewayUrl: string,
  opts: { clientId?: string; scope?: string; browser?: TestBrowser; resource?: string; login?: { username: string; password: string } } = {},
) {
  const clientId = opts.clientId ?? (await register(gatewayUrl)).client_id;
  const { verifier, challenge } = pkce();
  const url = authorizeUrl(gatewayUrl, {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "xyz",
    resource: opts.resource ?? `${gatewayUrl}/mcp`,
    ...(opts.scope ? { scope: opts.scope } : {}),
  });
  const redirect = await (opts.browser ?? new TestBrowser()).authorize(url, { redirectUri: REDIRECT_URI, ...(opts.login ?? LOGIN) });
  return { clientId, verifier, code: redirect.searchParams.get("code")!, redirect };
}

export async function tokenRequest(gatewayUrl: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(`${gatewayUrl}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, string> };
}

export async function redeem(gatewayUrl: string, c: { clientId: string; code: string; verifier: string }) {
  return tokenRequest(gatewayUrl, {
    grant_type: "authorization_code",
    code: c.code,
    code_verifier: c.verifier,
    client_id: c.clientId,
    redirect_uri: REDIRECT_URI,
  });
}

/** A raw MCP initialize POST with the given Authorization header value. */
export async function mcpInitialize(mcpUrl: string, authorization?: string, extraHeaders: Record<string, string> = {}) {
  return fetch(mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(authorization ? { authorization } : {}),
      ...extraHeaders,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    }),
  });
}

/** Register a client (or take the one given), open /authorize in the browser (with `redirectUri` and `extra` parameters), and land on Screen 1. */
export async function openScreen1(
  base: string,
  opts: { browser?: TestBrowser; clientId?: string; metadata?: Record<string, unknown>; redirectUri?: string; extra?: Record<string, string> } = {},
) {
  const browser = opts.browser ?? new TestBrowser();
  const clientId = opts.clientId ?? (await register(base, opts.metadata)).client_id;
  const start = await browser.request(clientAuthorizeUrl(base, clientId, { ...(opts.redirectUri ? { redirect_uri: opts.redirectUri } : {}), ...opts.extra }));
  const page = await browser.request(start.location!);
  return { browser, page, form: loginForm(page.text)!, clientId };
}

/** A grant for one resource, taken by hand: a public client, the browser step (as `login`, else LOGIN), the code redeemed; fails unless all of it works. */
export async function grantFor(
  gatewayUrl: string,
  resource: string,
  scope?: string,
  login?: { username: string; password: string },
): Promise<{ clientId: string; tokens: Record<string, string> }> {
  const code = await obtainCode(gatewayUrl, { resource, ...(scope ? { scope } : {}), ...(login ? { login } : {}) });
  if (!code.code) throw new Error(`no code: ${code.redirect.href}`);
  const { status, body } = await redeem(gatewayUrl, code);
  if (status !== 200) throw new Error(`the code was not redeemed: ${status} ${JSON.stringify(body)}`);
  return { clientId: code.clientId, tokens: body };
}

/** `grant_type=refresh_token` for a public client. */
export const refreshFor = (gatewayUrl: string, clientId: string, refreshToken: string) =>
  tokenRequest(gatewayUrl, { grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId });

/** `Bearer <access token>` from a real authorization code flow against the gateway. */
export async function bearerFor(gatewayUrl: string): Promise<string> {
  const { status, body } = await redeem(gatewayUrl, await obtainCode(gatewayUrl));
  if (status !== 200) throw new Error(`token request failed: ${status} ${JSON.stringify(body)}`);
  return `Bearer ${body.access_token}`;
}
