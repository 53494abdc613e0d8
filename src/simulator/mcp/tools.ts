import { setTimeout as sleep } from "node:timers/promises";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { avatarUrl, userJson } from "../api/user.js";
import type { SimContext } from "../context.js";
import type { SimUser } from "../options.js";
import { expandScopes } from "../scopes.js";
import type { AccessTokenRecord } from "../store.js";
import { randomHex } from "../tokens.js";

export interface ToolContext {
  ctx: SimContext;
  token: AccessTokenRecord | undefined;
}

export interface SimTool {
  name: string;
  toolset: string;
  readOnly: boolean;
  /** README "Required OAuth Scopes"; enforced by the scope challenge for gho_ tokens. */
  requiredScopes: string[];
  register(server: McpServer, tc: ToolContext): void;
}

const textResult = (value: unknown): CallToolResult => ({
  content: [{ type: "text", text: typeof value === "string" ? value : JSON.stringify(value) }],
});

/** Open-source mode lets unknown tokens through; the GitHub API call then fails inside the tool. */
function withUser(tc: ToolContext, what: string, run: (user: SimUser) => CallToolResult): CallToolResult {
  const user = tc.token && tc.ctx.users.find((u) => u.id === tc.token?.userId);
  if (!user) {
    return { isError: true, content: [{ type: "text", text: `failed to ${what}: GET ${tc.ctx.origins.api}/user: 401 Bad credentials []` }] };
  }
  return run(user);
}

const page = { page: z.number().min(1).optional().describe("Page number for pagination (min 1)"), perPage: z.number().min(1).max(100).optional().describe("Results per page for pagination (min 1, max 100)") };

export const TOOLS: SimTool[] = [
  {
    name: "get_me",
    toolset: "context",
    readOnly: true,
    requiredScopes: [],
    register: (server, tc) =>
      server.registerTool(
        "get_me",
        {
          title: "Get my user profile",
          description: "Get details of the authenticated GitHub user. Use this when a request is about the user's own profile for GitHub. Or when information is missing to build other tool calls.",
          annotations: { title: "Get my user profile", readOnlyHint: true, idempotentHint: false },
        },
        () => withUser(tc, "get user", (user) => textResult(minimalUser(user, tc))),
      ),
  },
  {
    name: "search_repositories",
    toolset: "repos",
    readOnly: true,
    requiredScopes: ["repo"],
    register: (server, tc) =>
      server.registerTool(
        "search_repositories",
        {
          title: "Search repositories",
          description: "Find GitHub repositories by name, description, readme, topics, or other metadata. Perfect for discovering projects, finding examples, or locating specific repositories across GitHub.",
          inputSchema: {
            query: z.string().describe("Repository search query. Examples: 'machine learning in:name stars:>1000 language:python', 'topic:react', 'user:facebook'. Supports advanced search syntax for precise filtering."),
            sort: z.enum(["stars", "forks", "help-wanted-issues", "updated"]).optional().describe("Sort repositories by field, defaults to best match"),
            order: z.enum(["asc", "desc"]).optional().describe("Sort order"),
            minimal_output: z.boolean().default(true).describe("Return minimal repository information (default: true). When false, returns full GitHub API repository objects."),
            ...page,
          },
          annotations: { title: "Search repositories", readOnlyHint: true, idempotentHint: false },
        },
        ({ query }) => withUser(tc, "search repositories", (user) => textResult(searchResult(user, query, tc.ctx))),
      ),
  },
  {
    name: "create_gist",
    toolset: "gists",
    readOnly: false,
    requiredScopes: ["gist"],
    register: (server, tc) =>
      server.registerTool(
        "create_gist",
        {
          title: "Create Gist",
          description: "Create a new gist",
          inputSchema: {
            description: z.string().optional().describe("Description of the gist"),
            filename: z.string().describe("Filename for simple single-file gist creation"),
            content: z.string().describe("Content for simple single-file gist creation"),
            public: z.boolean().default(false).describe("Whether the gist is public"),
          },
          annotations: { title: "Create Gist", readOnlyHint: false, destructiveHint: false, idempotentHint: false },
        },
        () =>
          withUser(tc, "create gist", () => {
            const id = randomHex(16);
            return textResult({ id, url: `${tc.ctx.origins.web}/gist/${id}` });
          }),
      ),
  },
  {
    name: "list_notifications",
    toolset: "notifications",
    readOnly: true,
    requiredScopes: ["notifications"],
    register: (server, tc) =>
      server.registerTool(
        "list_notifications",
        {
          title: "List notifications",
          description: "Lists all GitHub notifications for the authenticated user, including unread notifications, mentions, review requests, assignments, and updates on issues or pull requests.",
          inputSchema: {
            filter: z.enum(["default", "include_read_notifications", "only_participating"]).optional().describe("Filter notifications to, use default unless specified."),
            since: z.string().optional().describe("Only show notifications updated after the given time (ISO 8601 format)"),
            before: z.string().optional().describe("Only show notifications updated before the given time (ISO 8601 format)"),
            owner: z.string().optional().describe("Optional repository owner. If provided with repo, only notifications for this repository are listed."),
            repo: z.string().optional().describe("Optional repository name. If provided with owner, only notifications for this repository are listed."),
            ...page,
          },
          annotations: { title: "List notifications", readOnlyHint: true, idempotentHint: false },
        },
        () => withUser(tc, "list notifications", (user) => textResult(notifications(user, tc.ctx))),
      ),
  },
  {
    name: "count_slowly",
    toolset: "simulator",
    readOnly: true,
    requiredScopes: [],
    register: (server) =>
      server.registerTool(
        "count_slowly",
        {
          title: "Count slowly (simulator)",
          description: "Simulator-only: counts to `count`, sending a progress notification every `intervalMs` milliseconds.",
          inputSchema: {
            count: z.number().int().min(0).max(10_000).default(5).describe("How far to count"),
            intervalMs: z.number().int().min(0).max(60_000).default(200).describe("Real-time delay between steps"),
          },
          annotations: { title: "Count slowly (simulator)", readOnlyHint: true },
        },
        async ({ count, intervalMs }, extra) => {
          const progressToken = extra._meta?.progressToken;
          for (let i = 1; i <= count; i++) {
            await sleep(intervalMs, undefined, { signal: extra.signal });
            if (progressToken !== undefined) {
              await extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: i, total: count, message: `counted ${i} of ${count}` } });
            }
          }
          return textResult(`counted to ${count}`);
        },
      ),
  },
];

/** github-mcp-server context_tools.go MinimalUser; empty details are omitted like Go's omitempty. */
function minimalUser(user: SimUser, tc: ToolContext): Record<string, unknown> {
  const token = tc.token;
  const privateFields = token?.kind === "github_app" || (token !== undefined && expandScopes(token.scopes).has("read:user"));
  const full = userJson(user, tc.ctx, privateFields);
  const keys = ["name", "company", "blog", "location", "email", "hireable", "bio", "twitter_username", "public_repos", "public_gists", "followers", "following", "created_at", "updated_at", "private_gists", "total_private_repos", "owned_private_repos"];
  const details = Object.fromEntries(keys.map((k) => [k, full[k]]).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  return { login: user.login, id: user.id, profile_url: `${tc.ctx.origins.web}/${user.login}`, avatar_url: avatarUrl(user), details };
}

function searchResult(user: SimUser, query: string, ctx: SimContext): Record<string, unknown> {
  const word = query.split(/\s+/).find((w) => /^[A-Za-z0-9_.-]+$/.test(w)) ?? "hello-world";
  const repo = (id: number, owner: string, name: string, stars: number) => ({
    id, name, full_name: `${owner}/${name}`, description: `A simulated repository matching "${query}"`,
    html_url: `${ctx.origins.web}/${owner}/${name}`, language: "TypeScript", stargazers_count: stars, forks_count: Math.floor(stars / 10),
    open_issues_count: 3, updated_at: "2026-01-01T00:00:00Z", created_at: "2020-01-01T00:00:00Z", topics: ["simulator"],
    private: false, fork: false, archived: false, default_branch: "main",
  });
  const items = [repo(1296269, user.login, word, 42), repo(1296270, "octo-org", `${word}-examples`, 7)];
  return { total_count: items.length, incomplete_results: false, items };
}

function notifications(user: SimUser, ctx: SimContext): unknown[] {
  return [
    {
      id: "1",
      reason: "review_requested",
      unread: true,
      updated_at: "2026-01-01T00:00:00Z",
      last_read_at: null,
      subject: { title: "Add offline simulator", type: "PullRequest" },
      repository: { id: 1296269, name: "hello-world", full_name: `${user.login}/hello-world`, private: false, html_url: `${ctx.origins.web}/${user.login}/hello-world` },
    },
  ];
}
