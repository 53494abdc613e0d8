import type { ServerResponse } from "node:http";

type Id = string | number | null;

/**
 * JSON-RPC 2.0 §5.1 error codes the gateway answers with on /mcp. -32001 serves twice, as the MCP SDK
 * uses it: a request that timed out, and a session the server does not know (MCP transports §Session Management).
 * -32003, from the implementation-defined server-error range (-32000 to -32099), is a call the gateway's
 * policy refused (src/rs/policy.ts): with HTTP 200 for a request with an id, else 403 (rs/refusals.ts).
 */
export const JSONRPC = {
  serverError: -32000,
  requestTimeout: -32001,
  sessionNotFound: -32001,
  forbiddenByPolicy: -32003,
  invalidRequest: -32600,
  internalError: -32603,
} as const;

/**
 * The id of the request in a JSON-RPC body, for an error about it (JSON-RPC 2.0 §5: null when it
 * cannot be told, as for a batch, a notification or a body that is not JSON).
 */
export function requestId(body: Buffer | undefined): Id {
  if (!body) return null;
  try {
    const message = JSON.parse(body.toString("utf8")) as { id?: unknown } | null;
    const id = message?.id;
    return typeof id === "string" || typeof id === "number" ? id : null;
  } catch {
    return null;
  }
}

/** An HTTP error whose body is a JSON-RPC error response, so MCP clients can tie it to their request. */
export function sendJsonRpcError(res: ServerResponse, status: number, id: Id, code: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } });
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(body), ...headers }).end(body);
}
