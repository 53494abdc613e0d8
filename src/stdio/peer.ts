import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";

/**
 * One client as the bridge (src/stdio/link.ts) reaches it: a session-era session (src/stdio/session.ts)
 * or one 2026-07-28 request (src/stdio/stateless.ts).
 */
export interface Peer {
  /** A message for the client; `relatedTo` names the client's request it belongs to (its POST stream). */
  deliver(message: JSONRPCMessage, relatedTo?: RequestId): void;
  /** Whether server-to-client requests can reach this client (a 2026-07-28 request cannot: MCP 2026-07-28 §Transport). */
  readonly takesRequests: boolean;
  /** Whether a message with no request of its own reaches the client now (an open GET stream). */
  readonly listening: boolean;
}

/** JSON-RPC 2.0 §5.1 and MCP 2026-07-28 codes the bridge answers with. */
export const BRIDGE_ERRORS = { invalidRequest: -32600, internalError: -32603, headerMismatch: -32020, unsupportedVersion: -32022 } as const;

export const errorResponse = (id: RequestId, code: number, message: string): JSONRPCMessage => ({ jsonrpc: "2.0", id, error: { code, message } });
