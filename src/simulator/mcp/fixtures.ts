import { avatarUrl, userJson } from "../api/user.js";
import type { SimContext } from "../context.js";
import type { SimUser } from "../options.js";
import { expandScopes } from "../scopes.js";
import type { AccessTokenRecord } from "../store.js";

const DETAIL_KEYS = [
  ...["name", "company", "blog", "location", "email", "hireable", "bio", "twitter_username"],
  ...["public_repos", "public_gists", "followers", "following", "created_at", "updated_at"],
  ...["private_gists", "total_private_repos", "owned_private_repos"],
];

/** github-mcp-server context_tools.go MinimalUser; empty details are omitted like Go's omitempty. */
export function minimalUser(user: SimUser, token: AccessTokenRecord | undefined, ctx: SimContext): Record<string, unknown> {
  const privateFields = token?.kind === "github_app" || (token !== undefined && expandScopes(token.scopes).has("read:user"));
  const full = userJson(user, ctx, privateFields);
  const details = Object.fromEntries(DETAIL_KEYS.map((k): [string, unknown] => [k, full[k]]).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  return { login: user.login, id: user.id, profile_url: `${ctx.origins.web}/${user.login}`, avatar_url: avatarUrl(user), details };
}

export function searchResult(user: SimUser, query: string, ctx: SimContext): Record<string, unknown> {
  const word = query.split(/\s+/).find((w) => /^[A-Za-z0-9_.-]+$/.test(w)) ?? "hello-world";
  const repo = (id: number, owner: string, name: string, stars: number) => ({
    id,
    name,
    full_name: `${owner}/${name}`,
    description: `A simulated repository matching "${query}"`,
    html_url: `${ctx.origins.web}/${owner}/${name}`,
    language: "TypeScript",
    stargazers_count: stars,
    forks_count: Math.floor(stars / 10),
    open_issues_count: 3,
    updated_at: "2026-01-01T00:00:00Z",
    created_at: "2020-01-01T00:00:00Z",
    topics: ["simulator"],
    private: false,
    fork: false,
    archived: false,
    default_branch: "main",
  });
  const items = [repo(1296269, user.login, word, 42), repo(1296270, "octo-org", `${word}-examples`, 7)];
  return { total_count: items.length, incomplete_results: false, items };
}

export function notifications(user: SimUser, ctx: SimContext): unknown[] {
  return [
    {
      id: "1",
      reason: "review_requested",
      unread: true,
      updated_at: "2026-01-01T00:00:00Z",
      last_read_at: null,
      subject: { title: "Add offline simulator", type: "PullRequest" },
      repository: {
        id: 1296269,
        name: "hello-world",
        full_name: `${user.login}/hello-world`,
        private: false,
        html_url: `${ctx.origins.web}/${user.login}/hello-world`,
      },
    },
  ];
}
