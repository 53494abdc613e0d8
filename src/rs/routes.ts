import type { IncomingMessage, ServerResponse } from "node:http";
import cors from "cors";
import { OAuthError, sendError } from "../errors.js";
import { knownPathAccessLog, type Logger } from "../log.js";
import type { StdioProcesses } from "../stdio/child.js";
import type { Mount } from "../upstream/mounts.js";
import { originGuard } from "./origin.js";
import { mcpProxy, type ProxyDeps } from "./proxy.js";
import { stdioEndpoint } from "./stdio.js";

export interface McpEndpointDeps extends ProxyDeps {
  /** The processes of the local (stdio) servers (src/stdio/pool.ts): needed when a mount is one. */
  stdio?: StdioProcesses;
  log: Logger;
  publicUrl: string;
  allowedOrigins: readonly string[];
}

/** Request headers browsers may send cross-origin (checklist I11, K3): MCP's own, and `X-MCP-*` as GitHub's server reads them. */
const ALLOWED_REQUEST_HEADERS = [
  "authorization",
  "content-type",
  "accept",
  "last-event-id",
  "mcp-session-id",
  "mcp-protocol-version",
  "mcp-method",
  "mcp-name",
];
const ALLOWED_PREFIXES = ["mcp-param-", "x-mcp-"];
const METHODS = new Set(["GET", "POST", "DELETE", "OPTIONS"]);

/**
 * One upstream's MCP endpoint (/mcp or /mcp/<name>), the hot path, without Express: access log, Origin check (DNS rebinding), CORS, then the
 * proxy. Errors take the same JSON form as the rest of the gateway's. Nothing is allocated per request here beyond what the proxy needs.
 */
export function mcpEndpoint(mount: Mount, deps: McpEndpointDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const logged = knownPathAccessLog(deps.log, mount.config.path);
  const origin = originGuard(deps);
  const corsFor = cors((req, callback) =>
    callback(null, {
      origin: "*",
      methods: [...METHODS],
      allowedHeaders: allowedRequestHeaders(req.headers["access-control-request-headers"]),
      exposedHeaders: ["Mcp-Session-Id", "WWW-Authenticate", "MCP-Protocol-Version"],
      maxAge: 86400,
    }),
  );
  // a local (stdio) server: the bridge to its processes in place of the relay
  const proxy = mount.config.stdio ? stdioEndpoint(mount, { ...deps, stdio: required(deps.stdio) }) : mcpProxy(mount, deps);
  const relay = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      await proxy(req, res);
    } catch (error) {
      sendError(res, error, deps.log);
    }
  };
  return (req, res) => {
    logged(res);
    // RFC 9110 §15.5.6: 405 names the methods the endpoint has
    if (!METHODS.has(req.method!))
      return sendError(
        res,
        new OAuthError("invalid_request", "The MCP endpoint takes GET, POST and DELETE.", 405, { Allow: "GET, POST, DELETE, OPTIONS" }),
        deps.log,
      );
    // Only browsers read CORS headers, and they always send Origin cross-origin: native clients skip both checks
    if (req.headers.origin === undefined && req.method !== "OPTIONS") return void relay(req, res);
    origin(req, res, () => corsFor(req, res, () => void relay(req, res)));
  };
}

function required(stdio: StdioProcesses | undefined): StdioProcesses {
  if (!stdio) throw new Error("a stdio server is mounted without the process pool");
  return stdio;
}

/** The allowed list, plus those a preflight asks for under an allowed prefix (no wildcard covers them). */
function allowedRequestHeaders(requested: string | undefined): string[] {
  const asked = (requested ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => ALLOWED_PREFIXES.some((p) => h.startsWith(p) && h.length > p.length));
  return [...ALLOWED_REQUEST_HEADERS, ...asked];
}
