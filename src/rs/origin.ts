import type { IncomingMessage, ServerResponse } from "node:http";
import { isLoopbackHost } from "../hosts.js";
import { JSONRPC, sendJsonRpcError } from "./jsonrpc.js";

/**
 * MCP transports §Security Warning: servers MUST validate `Origin` (DNS rebinding). Accepted: no
 * `Origin` (native clients), the gateway's own origin, loopback origins (browser clients such as
 * the Inspector at http://localhost:6274) and the operator's `--allowed-origins`.
 */
export function originAllowed(origin: string | undefined, publicUrl: string, allowedOrigins: readonly string[]): boolean {
  if (origin === undefined) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false; // "null" (opaque origins: sandboxed frames, file: pages) lands here
  }
  // An Origin header is a serialized origin (RFC 6454 §7.1): anything with a path, user or query is forged
  if (parsed.origin !== origin.toLowerCase() || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) return false;
  return parsed.origin === new URL(publicUrl).origin || isLoopbackHost(parsed.hostname) || allowedOrigins.includes(parsed.origin);
}

/**
 * 403 before anything else runs, token validation included. The body is a JSON-RPC error without
 * an id, as MCP transports §Security Warning (2025-11-25) describes: /mcp speaks JSON-RPC, and this
 * refusal concerns the browser page, not a token, so no OAuth error code fits it.
 */
export function originGuard(opts: { publicUrl: string; allowedOrigins: readonly string[] }) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    if (req.headers.origin === undefined || originAllowed(req.headers.origin, opts.publicUrl, opts.allowedOrigins)) return next();
    sendJsonRpcError(res, 403, null, JSONRPC.serverError, "Forbidden: this Origin may not call the MCP endpoint.");
  };
}
