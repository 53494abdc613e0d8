import type { AuthorizationServer } from "oauth4webapi";
import type { Fetch } from "./http.js";

/**
 * Upstream authorization servers that bend OAuth, GitHub first among them, made standard in this
 * one place so the rest of the gateway speaks plain RFC 6749 through oauth4webapi:
 * - token endpoint errors sent with HTTP 200 (GitHub) become the RFC 6749 §5.2 400 they mean;
 * - form-encoded token responses (GitHub without `Accept: application/json`) become JSON;
 * - comma-separated `scope` (GitHub) becomes space-separated (RFC 6749 §3.3);
 * - GitHub's own error codes become the RFC 6749 §5.2 codes with the same meaning;
 * - a repeated media type (`Content-Type: application/json, application/json`, GitHub's RFC 9728
 *   metadata) becomes the single type it means.
 * GitHub's other quirks are about token lifetimes (no refresh token for OAuth Apps, single-use
 * rotating refresh tokens for GitHub Apps), which the token model handles for every upstream, and
 * token revocation, which GitHub offers only through its REST API (below).
 */
const ERROR_CODES: Record<string, string> = {
  bad_verification_code: "invalid_grant",
  bad_refresh_token: "invalid_grant",
  redirect_uri_mismatch: "invalid_grant",
  incorrect_client_credentials: "invalid_client",
  unverified_user_email: "access_denied",
};

export function standardUpstream(inner: Fetch, isTokenEndpoint: (url: string) => boolean): Fetch {
  return async (url, init) => {
    const headers = new Headers(init.headers);
    if (!headers.has("accept")) headers.set("accept", "application/json");
    const response = withSingleContentType(await inner(url, { ...init, headers }));
    if (!isTokenEndpoint(url) || response.status >= 500) return response;
    const text = await response.text();
    const body = parse(text, response.headers.get("content-type") ?? "");
    if (!body) return new Response(text, { status: response.status, headers: response.headers });
    if (typeof body.error === "string") {
      body.error = ERROR_CODES[body.error] ?? body.error;
      return json(body, response.status === 200 ? 400 : response.status);
    }
    if (typeof body.scope === "string")
      body.scope = body.scope
        .split(/[\s,]+/)
        .filter(Boolean)
        .join(" ");
    for (const field of ["expires_in", "refresh_token_expires_in"])
      if (typeof body[field] === "string" && /^\d+$/.test(body[field])) body[field] = Number(body[field]);
    return json(body, response.status);
  };
}

function withSingleContentType(response: Response): Response {
  const type = response.headers.get("content-type");
  if (!type?.includes(",")) return response;
  const fixed = new Headers(response.headers);
  fixed.set("content-type", type.split(",")[0]!.trim());
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: fixed });
}

function parse(text: string, type: string): Record<string, unknown> | undefined {
  try {
    if (type.includes("application/x-www-form-urlencoded")) return Object.fromEntries(new URLSearchParams(text));
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const json = (body: unknown, status: number) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * GitHub's REST API for an upstream whose AS is GitHub's (token endpoint `/login/oauth/access_token`):
 * api.github.com for github.com, `/api/v3` on a GitHub Enterprise Server host, or wherever `apiUrl`
 * says. Undefined when the upstream is not GitHub.
 */
export function githubApi(as: AuthorizationServer, apiUrl?: string): string | undefined {
  if (!as.token_endpoint || new URL(as.token_endpoint).pathname !== "/login/oauth/access_token") return undefined;
  const web = new URL(as.token_endpoint);
  return (apiUrl ?? (web.hostname === "github.com" ? "https://api.github.com" : `${web.origin}/api/v3`)).replace(/\/$/, "");
}

/** GitHub revokes an OAuth or GitHub App user token at `DELETE <api>/applications/{client_id}/token` (no RFC 7009 endpoint). */
export function githubTokenRevocation(as: AuthorizationServer, clientId: string, apiUrl?: string): string | undefined {
  const api = githubApi(as, apiUrl);
  return api && `${api}/applications/${encodeURIComponent(clientId)}/token`;
}

export const githubRevocationRequest = (clientId: string, clientSecret: string, accessToken: string): RequestInit => ({
  method: "DELETE",
  headers: {
    authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
    accept: "application/vnd.github+json",
    "content-type": "application/json",
    "user-agent": "mcp-oauth-gateway",
    "x-github-api-version": "2022-11-28",
  },
  body: JSON.stringify({ access_token: accessToken }),
});
