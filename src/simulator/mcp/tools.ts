import { setTimeout as sleep } from "node:timers/promises";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { SimContext } from "../context.js";
import type { SimUser } from "../options.js";
import type { AccessTokenRecord } from "../store.js";
import { randomHex } from "../tokens.js";
import { minimalUser, notifications, searchResult } from "./fixtures.js";

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

const page = {
  page: z.number().min(1).optional().describe("Page number for pagination (min 1)"),
  perPage: z.number().min(1).max(100).optional().describe("Results per page for pagination (min 1, max 100)"),
};

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
          description:
            "Get details of the authenticated GitHub user. Use this when a request is about the user's own profile for GitHub. Or when information is missing to build other tool calls.",
          annotations: { title: "Get my user profile", readOnlyHint: true, idempotentHint: false },
        },
        () => withUser(tc, "get user", (user) => textResult(minimalUser(user, tc.token, tc.ctx))),
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
          description:
            "Find GitHub repositories by name, description, readme, topics, or other metadata. Perfect for discovering projects, finding examples, or locating specific repositories across GitHub.",
          inputSchema: {
            query: z
              .string()
              .describe(
                "Repository search query. Examples: 'machine learning in:name stars:>1000 language:python', 'topic:react', 'user:facebook'. Supports advanced search syntax for precise filtering.",
              ),
            sort: z.enum(["stars", "forks", "help-wanted-issues", "updated"]).optional().describe("Sort repositories by field, defaults to best match"),
            order: z.enum(["asc", "desc"]).optional().describe("Sort order"),
            minimal_output: z
              .boolean()
              .default(true)
              .describe("Return minimal repository information (default: true). When false, returns full GitHub API repository objects."),
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
          description:
            "Lists all GitHub notifications for the authenticated user, including unread notifications, mentions, review requests, assignments, and updates on issues or pull requests.",
          inputSchema: {
            filter: z
              .enum(["default", "include_read_notifications", "only_participating"])
              .optional()
              .describe("Filter notifications to, use default unless specified."),
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
              await extra.sendNotification({
                method: "notifications/progress",
                params: { progressToken, progress: i, total: count, message: `counted ${i} of ${count}` },
              });
            }
          }
          return textResult(`counted to ${count}`);
        },
      ),
  },
];
