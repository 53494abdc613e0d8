import type { ValidatedAccess } from "../grants/validate.js";

/** The JSON-RPC call a /mcp request makes, as far as a policy needs it. */
export interface McpCall {
  method: string;
  /** The tool's name, for `tools/call`. */
  tool?: string;
}

export type PolicyVerdict = { allow: true } | { allow: false; reason: string };

/**
 * Whether the gateway relays one /mcp request: given the validated access and the call it makes
 * (undefined for GET and DELETE, or a body that is not a JSON-RPC request; with a policy every POST
 * body is read whole, and a batch is refused with 400 before the policy is asked). A deny is answered with HTTP 403
 * and JSON-RPC error JSONRPC.forbiddenByPolicy. None is installed by default: every authenticated request is relayed, and no body is parsed for a policy.
 */
export type McpPolicy = (access: ValidatedAccess, call: McpCall | undefined) => PolicyVerdict | Promise<PolicyVerdict>;

/**
 * Whether a body read whole is a JSON-RPC batch (an array): a policy cannot judge one call of it by the
 * rest, and MCP 2025-06-18 removed batching, so with a policy installed a batch is refused (400).
 */
export function isBatch(body: Buffer | undefined): boolean {
  if (!body) return false;
  for (const byte of body) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return byte === 0x5b; // "["
  return false;
}

/** The single JSON-RPC call in a body read whole, else undefined (JSON-RPC 2.0 §4, §6). */
export function jsonRpcCall(body: Buffer | undefined): McpCall | undefined {
  if (!body) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) return undefined;
  const { method, params } = message as { method?: unknown; params?: { name?: unknown } };
  if (typeof method !== "string") return undefined;
  const tool = method === "tools/call" && typeof params?.name === "string" ? params.name : undefined;
  return tool === undefined ? { method } : { method, tool };
}
