import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";
import type { SimContext } from "../context.js";
import { text, type Handler, type SimRequest, type SimResponse, type Takeover } from "../http.js";
import { randomHex } from "../tokens.js";
import { authGate, scopeChallenge } from "./auth.js";
import { parseMcpPath, PRM_PREFIX, type McpRoute } from "./paths.js";
import { createMcpServer } from "./server.js";
import { TOOLS, type SimTool } from "./tools.js";
import { selectTools } from "./toolsets.js";

/** github-mcp-server middleware/cors.go; OPTIONS is answered before auth. */
const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
  "access-control-allow-headers":
    "Content-Type, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Authorization, X-MCP-Readonly, X-MCP-Toolsets, X-MCP-Tools, X-MCP-Exclude-Tools, X-MCP-Features, X-MCP-Lockdown, X-MCP-Insiders",
  "access-control-expose-headers": "Mcp-Session-Id, WWW-Authenticate",
  "access-control-max-age": "86400",
};

/** go-sdk v1.7.0 streamable.go */
const PROTOCOL_VERSIONS = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

const SCOPES_SUPPORTED = [
  "repo",
  "read:org",
  "read:user",
  "user:email",
  "read:packages",
  "write:packages",
  "read:project",
  "project",
  "gist",
  "notifications",
  "workflow",
  "codespace",
];

const notFound = (): SimResponse => text(404, "404 page not found\n");

/** api.githubcopilot.com */
export function mcpHandler(ctx: SimContext): Handler {
  return (req) => decorate(route(req, ctx));
}

function route(req: SimRequest, ctx: SimContext): SimResponse | Takeover {
  if (req.method === "OPTIONS") return { status: 200 };
  const pathname = req.url.pathname;
  if (pathname.startsWith(`${PRM_PREFIX}/`)) {
    const prmRoute = parseMcpPath(pathname.slice(PRM_PREFIX.length));
    return prmRoute && req.method === "GET" ? protectedResourceMetadata(prmRoute, ctx) : notFound();
  }
  const mcpRoute = parseMcpPath(pathname);
  if (!mcpRoute) return notFound();
  const gate = authGate(req.headers.authorization, mcpRoute, ctx);
  if ("response" in gate) return gate.response;
  if (req.method !== "POST") return text(405, "Method Not Allowed\n", { allow: "POST" });
  const transportError = checkTransport(req.headers);
  if (transportError) return transportError;
  const selection = selectTools(mcpRoute, req.headers);
  if ("error" in selection) return text(400, `${selection.error}\n`);
  let payload: unknown;
  try {
    payload = JSON.parse(req.body);
  } catch {
    return text(400, "malformed payload: invalid JSON\n");
  }
  const messages: unknown[] = Array.isArray(payload) ? payload : [payload];
  for (const name of messages.map(calledToolName)) {
    const tool = TOOLS.find((t) => t.name === name);
    const challenge = tool && scopeChallenge(gate.token, tool.requiredScopes, mcpRoute, ctx);
    if (challenge) return challenge;
  }
  const initialize = messages.some((m) => (m as { method?: unknown } | null)?.method === "initialize");
  return handOver(payload, selection.tools, { ctx, token: gate.token }, initialize && ctx.quirks.emitLegacySessionId);
}

/** RFC 9728 §3.2 as the hosted server answers it. */
function protectedResourceMetadata(route: McpRoute, ctx: SimContext): SimResponse {
  // microsoft/vscode#259251: in 2025 the resource dropped the trailing slash whatever was asked.
  const path = ctx.quirks.prmResourceBug2025 ? route.path.replace(/\/$/, "") : route.path;
  const body = {
    resource: `${ctx.origins.mcp}${path}`,
    authorization_servers: [`${ctx.origins.web}/login/oauth`],
    scopes_supported: SCOPES_SUPPORTED,
    bearer_methods_supported: ["header"],
    resource_name: "GitHub MCP Server",
  };
  return {
    status: 200,
    // QUIRK (vscode#259251 trace): the hosted server duplicates the content-type value.
    headers: { "content-type": "application/json, application/json", "content-security-policy": "default-src 'none'; sandbox" },
    body: JSON.stringify(body),
  };
}

/** go-sdk v1.7.0 streamable.go, checked in this order. */
function checkTransport(headers: Record<string, string>): SimResponse | undefined {
  const version = headers["mcp-protocol-version"];
  if (version !== undefined && !PROTOCOL_VERSIONS.includes(version)) {
    return text(400, `Bad Request: Unsupported protocol version (supported versions: ${PROTOCOL_VERSIONS.join(",")})\n`);
  }
  const contentType = (headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json") return text(415, "Content-Type must be 'application/json'\n");
  const accept = headers.accept ?? "";
  if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
    return text(400, "Accept must contain both 'application/json' and 'text/event-stream'\n");
  }
  return undefined;
}

function calledToolName(message: unknown): string | undefined {
  const m = message as { method?: unknown; params?: { name?: unknown } } | null;
  return m?.method === "tools/call" && typeof m.params?.name === "string" ? m.params.name : undefined;
}

function handOver(payload: unknown, tools: SimTool[], tc: Parameters<typeof createMcpServer>[1], legacySession: boolean): Takeover {
  return async (req, res) => {
    const server = createMcpServer(tools, tc);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: false, keepAliveMs: 0 });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    // Hosted server 2026-04 (spec S3.4): a session id nobody has to send back.
    if (legacySession) res.setHeader("mcp-session-id", randomUUID());
    const version = req.headers["mcp-protocol-version"];
    if (typeof version === "string" && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) dropHeader(req, "mcp-protocol-version");
    await server.connect(transport);
    await transport.handleRequest(req, res, payload);
  };
}

function decorate(result: SimResponse | Takeover): SimResponse | Takeover {
  const headers: Record<string, string> = { ...CORS_HEADERS, server: "github-mcp-server-remote", "x-github-request-id": randomHex(8).toUpperCase() };
  if (typeof result !== "function") return { ...result, headers: { ...headers, ...result.headers } };
  return (req, res) => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    return result(req, res);
  };
}

/** Versions go-sdk accepts but the TS SDK does not are served as the default version. */
function dropHeader(req: IncomingMessage, name: string): void {
  delete req.headers[name];
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (req.rawHeaders[i]?.toLowerCase() === name) req.rawHeaders.splice(i, 2);
  }
}
