import type { SimContext } from "../context.js";
import type { SimOrgMembership, SimUser } from "../options.js";

const CREATED_AT = "2011-01-25T18:44:36Z";
const UPDATED_AT = "2026-01-01T00:00:00Z";

export const avatarUrl = (user: SimUser): string => `https://avatars.githubusercontent.com/u/${user.id}?v=4`;

/** GET /user. Private fields only for tokens that may read them (ghu_, or gho_ with user / read:user). */
export function userJson(user: SimUser, ctx: SimContext, includePrivate: boolean): Record<string, unknown> {
  const api = `${ctx.origins.api}/users/${user.login}`;
  const base = {
    login: user.login,
    id: user.id,
    node_id: nodeId("U", user.id),
    avatar_url: avatarUrl(user),
    gravatar_id: "",
    url: api,
    html_url: `${ctx.origins.web}/${user.login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: "User",
    user_view_type: includePrivate ? "private" : "public",
    site_admin: false,
    name: user.name ?? null,
    company: null,
    blog: "",
    location: null,
    email: user.publicEmail ?? null,
    hireable: null,
    bio: null,
    twitter_username: null,
    public_repos: 8,
    public_gists: 8,
    followers: 42,
    following: 9,
    created_at: CREATED_AT,
    updated_at: UPDATED_AT,
  };
  if (!includePrivate) return base;
  return {
    ...base,
    private_gists: 1,
    total_private_repos: 2,
    owned_private_repos: 2,
    disk_usage: 1024,
    collaborators: 0,
    two_factor_authentication: true,
    plan: { name: "free", space: 976562499, private_repos: 10000, collaborators: 0 },
  };
}

export const simpleUserJson = (user: SimUser, ctx: SimContext): Record<string, unknown> => {
  const { login, id, node_id, avatar_url, url, html_url, type, site_admin } = userJson(user, ctx, false);
  return { login, id, node_id, avatar_url, url, html_url, type, site_admin };
};

export function orgJson(org: SimOrgMembership, ctx: SimContext): Record<string, unknown> {
  const url = `${ctx.origins.api}/orgs/${org.login}`;
  return {
    login: org.login,
    id: org.id,
    node_id: nodeId("O", org.id),
    url,
    repos_url: `${url}/repos`,
    events_url: `${url}/events`,
    hooks_url: `${url}/hooks`,
    issues_url: `${url}/issues`,
    members_url: `${url}/members{/member}`,
    public_members_url: `${url}/public_members{/member}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${org.id}?v=4`,
    description: null,
  };
}

export function membershipJson(org: SimOrgMembership, user: SimUser, ctx: SimContext): Record<string, unknown> {
  return {
    url: `${ctx.origins.api}/orgs/${org.login}/memberships/${user.login}`,
    state: org.state,
    role: org.role,
    organization_url: `${ctx.origins.api}/orgs/${org.login}`,
    organization: orgJson(org, ctx),
    user: simpleUserJson(user, ctx),
  };
}

const nodeId = (kind: string, id: number): string => Buffer.from(`0${kind}:${id}`).toString("base64").replace(/=+$/, "");
