import type { Fetch } from "./http.js";

/** Who the user is at the upstream, as far as the upstream tells. Recorded with the grant. */
export interface UpstreamIdentity {
  /** OIDC `sub`; for GitHub, the numeric user id. */
  sub?: string;
  /** GitHub's login. */
  login?: string;
  /** A verified address only. */
  email?: string;
  preferred_username?: string;
}

/** What an org membership lookup found (GitHub REST `GET /user/memberships/orgs/{org}`). */
export type Membership = "active" | "pending" | "none" | "restricted";

const githubHeaders = (token: string) => ({
  authorization: `Bearer ${token}`,
  accept: "application/vnd.github+json",
  "user-agent": "mcp-oauth-gateway",
  "x-github-api-version": "2022-11-28",
});

async function getJson(fetch: Fetch, url: string, token: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { method: "GET", headers: githubHeaders(token) });
  const body: unknown = response.ok ? await response.json().catch(() => undefined) : await response.body?.cancel();
  return { status: response.status, body };
}

/** `GET /user`, and the primary verified address from `/user/emails` when the token may read it (`user:email`). */
export async function githubIdentity(api: string, token: string, fetch: Fetch): Promise<UpstreamIdentity> {
  const user = await getJson(fetch, `${api}/user`, token);
  const body = user.body as { login?: unknown; id?: unknown; email?: unknown } | undefined;
  if (user.status !== 200 || typeof body?.login !== "string") throw new Error(`GitHub's /user answered HTTP ${user.status}`);
  const emails = await getJson(fetch, `${api}/user/emails`, token);
  const primary = Array.isArray(emails.body)
    ? (emails.body as { email?: unknown; primary?: unknown; verified?: unknown }[]).find((e) => e.primary === true && e.verified === true)
    : undefined;
  // GitHub shows only a verified address as the public profile email
  const email = typeof primary?.email === "string" ? primary.email : typeof body.email === "string" ? body.email : undefined;
  return { sub: String(body.id), login: body.login, preferred_username: body.login, ...(email ? { email } : {}) };
}

/**
 * Whether the token's user is an active member of `org`. A 403 is the org's OAuth App access
 * restriction (or SSO enforcement): the org has not approved this app, so membership cannot be seen.
 */
export async function githubMembership(api: string, token: string, org: string, fetch: Fetch): Promise<Membership> {
  const { status, body } = await getJson(fetch, `${api}/user/memberships/orgs/${encodeURIComponent(org)}`, token);
  if (status === 200) return (body as { state?: unknown } | undefined)?.state === "active" ? "active" : "pending";
  if (status === 404) return "none";
  if (status === 403) return "restricted";
  throw new Error(`GitHub's membership API answered HTTP ${status}`);
}

/** From validated ID token claims or a userinfo response (OIDC Core §5.1): an email counts only when verified. */
export function oidcIdentity(claims: Record<string, unknown>): UpstreamIdentity {
  const text = (name: string) => {
    const value = claims[name];
    return typeof value === "string" && value ? value : undefined;
  };
  const email = claims.email_verified === true ? text("email") : undefined;
  const preferred = text("preferred_username");
  return { ...(text("sub") ? { sub: text("sub") } : {}), ...(email ? { email } : {}), ...(preferred ? { preferred_username: preferred } : {}) };
}
