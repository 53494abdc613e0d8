import type { IncomingMessage, ServerResponse } from "node:http";
import { extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import type { Dispatcher } from "undici";
import { OAuthError, type ErrorLog } from "../errors.js";
import { scopeUnion } from "../scope.js";
import { storeKey, StoreUnavailableError } from "../store/store.js";
import type { ValidatedAccess } from "../grants/validate.js";
import { bearerChallenge, type BearerDeps } from "./bearer.js";
import { JSONRPC, requestId, sendJsonRpcError } from "./jsonrpc.js";
import type { PolicyVerdict } from "./policy.js";
import { SessionOfAnother } from "./sessions.js";

/** How long a step-up challenge holds the grant's next refresh back (src/as/refresh.ts, refuseDuringStepUp): MCP clients refresh at once. */
const STEP_UP_TTL = 60;

export type UpstreamRefusal = Pick<Dispatcher.StreamFactoryData, "statusCode" | "headers">;

export interface RefusalDeps extends BearerDeps {
  log: ErrorLog;
  /** The upstream MCP endpoint. */
  target: URL;
  /** How long the relay waited for the upstream's response headers. */
  upstreamTimeoutMs: number;
}

/** A refusal of the user's token is the client's to fix; any refusal of the gateway's own credentials (or none) is not. */
export function isRefusal(statusCode: number, headers: UpstreamRefusal["headers"], upstreamAccessToken: string): boolean {
  return statusCode === 401 || (statusCode === 403 && (!upstreamAccessToken || upstreamChallenge(headers).error === "insufficient_scope"));
}

/**
 * The upstream's refusal, answered as the gateway's own: a challenge toward the gateway's authorization
 * server (the upstream's would send the client to the upstream's), or 502 when no authorization by the
 * client can fix it.
 */
export async function answerRefusal(
  deps: RefusalDeps,
  req: IncomingMessage,
  res: ServerResponse,
  refused: UpstreamRefusal,
  { claims, upstreamAccessToken }: Pick<ValidatedAccess, "claims" | "upstreamAccessToken">,
  body: Buffer | undefined,
): Promise<void> {
  if (!upstreamAccessToken) {
    deps.log.error(`the upstream ${deps.target.origin} refused the gateway's credentials with HTTP ${refused.statusCode}`);
    return sendJsonRpcError(res, 502, requestId(body), JSONRPC.internalError, "The upstream refused the gateway's credentials.");
  }
  if (refused.statusCode === 401) {
    // The next refresh of this grant must not hand out the same upstream token again.
    await deps.store.put(storeKey.upstreamRejected(claims.gid), true, deps.refreshTokenTtl);
    throw rewritten(deps, req, 401, { code: "invalid_token", description: "The upstream rejected the access token; refresh it or authorize again." });
  }
  // MCP Authorization §Runtime Insufficient Scope Errors (2026-07-28): name every scope the operation needs,
  // the grant's with the upstream's, since the client re-authorizes with exactly what the challenge lists
  const scope = scopeUnion(claims.scope, upstreamChallenge(refused.headers).scope);
  // only a scope the grant lacks can be had by authorizing again
  if (scope !== scopeUnion(claims.scope)) await deps.store.put(storeKey.stepUp(claims.gid), scope, STEP_UP_TTL);
  throw rewritten(deps, req, 403, {
    code: "insufficient_scope",
    description: "The upstream needs more scope for this operation.",
    ...(scope ? { scope } : {}),
  });
}

/**
 * The relay failed before the response began: 502 when the upstream cannot be reached or breaks off before
 * answering, 504 when it does not answer in time, each with a JSON-RPC error carrying the request's id, so
 * the client can tell which call failed.
 */
export function relayFailed(deps: RefusalDeps, res: ServerResponse, error: unknown, body: Buffer | undefined): void {
  if (error instanceof StoreUnavailableError) throw error;
  if (res.headersSent || res.destroyed) return;
  if (error instanceof SessionOfAnother) {
    deps.log.error(`the upstream ${deps.target.origin} answered one user with a session id bound to another`);
    return sendJsonRpcError(res, 502, requestId(body), JSONRPC.internalError, error.message);
  }
  const code = (error as { code?: unknown }).code;
  const timeout = code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT";
  deps.log.error(`upstream MCP request failed: ${typeof code === "string" ? code : (error as Error).name}`);
  const id = requestId(body);
  if (timeout)
    return sendJsonRpcError(res, 504, id, JSONRPC.requestTimeout, `The upstream MCP server did not answer within ${deps.upstreamTimeoutMs / 1000} s.`);
  sendJsonRpcError(res, 502, id, JSONRPC.internalError, "The upstream MCP server could not be reached.");
}

/**
 * The installed policy refused the call. A request with an id gets its JSON-RPC error with 200, which MCP
 * clients hand to the caller as that call's error (on a 4xx they see only a failed POST); anything else 403.
 */
export function refusedByPolicy(res: ServerResponse, verdict: Extract<PolicyVerdict, { allow: false }>, body: Buffer | undefined): void {
  const id = requestId(body);
  sendJsonRpcError(res, id === null ? 403 : 200, id, JSONRPC.forbiddenByPolicy, verdict.reason);
}

/** A JSON-RPC batch while a policy is installed: 400 (batching left MCP in 2025-06-18; a policy judges one call). */
export function refusedBatch(res: ServerResponse): void {
  sendJsonRpcError(
    res,
    400,
    null,
    JSONRPC.invalidRequest,
    "Invalid Request: JSON-RPC batches are not accepted while a policy is installed (MCP 2025-06-18 removed batching).",
  );
}

function rewritten(
  deps: BearerDeps,
  request: IncomingMessage,
  status: number,
  error: { code: "invalid_token" | "insufficient_scope"; description: string; scope?: string },
): OAuthError {
  return new OAuthError(error.code, error.description, status, { "WWW-Authenticate": bearerChallenge(deps, request, error) });
}

function upstreamChallenge(headers: UpstreamRefusal["headers"]) {
  const value = headers["www-authenticate"];
  const response = new globalThis.Response(null, { headers: value ? { "www-authenticate": Array.isArray(value) ? value.join(", ") : value } : {} });
  return extractWWWAuthenticateParams(response);
}
