import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import type { StdioProcesses } from "../stdio/child.js";
import { StdioBridge } from "../stdio/bridge.js";
import { afterStreamOpens } from "../stdio/session.js";
import { typedSlash, type Mount } from "../upstream/mounts.js";
import { authenticate, type BearerDeps } from "./bearer.js";
import { bodyWhole, declaredLength, MCP_BODY_LIMIT, refuseBody } from "./body.js";
import { sendJsonRpcError } from "./jsonrpc.js";
import { jsonRpcCall } from "./policy.js";
import type { ProxyDeps } from "./proxy.js";
import { refusedBatch, refusedByPolicy } from "./refusals.js";
import { holdStream } from "./streams.js";

export interface StdioEndpointDeps extends ProxyDeps {
  log: Logger;
  /** The processes of the local (stdio) servers (src/stdio/pool.ts). */
  stdio: StdioProcesses;
}

/** JSON-RPC 2.0 §5.1: the body is not JSON. */
const PARSE_ERROR = -32700;

/**
 * POST|GET|DELETE /mcp/<name> of a stdio server: the HTTP around the bridge (src/stdio/bridge.ts), as
 * the proxy's: authenticate, count GET streams, read the body (whole: the bridge reads every message),
 * ask the policy; then the bridge answers, or says why it will not.
 */
export function stdioEndpoint(mount: Mount, deps: StdioEndpointDeps) {
  const bearer: BearerDeps = {
    ...deps,
    resource: mount.resource,
    resourceMetadataUrl: (request) => mount.metadataUrlAt(deps.origins.forHost(request.headers.host), typedSlash(request.url)),
    scopes: () => mount.advertisedScopes(),
  };
  const bridge = new StdioBridge(mount.config.name, deps.stdio, deps);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const length = declaredLength(req);
    if (req.method === "POST" && length !== undefined && length > MCP_BODY_LIMIT) return refuseBody(res);
    const access = await authenticate(req, bearer);
    if (req.method === "GET" && !holdStream(deps.streams, access.claims.gid, deps.clientAddress(req), res)) return;
    const exchange = deps.relays.add(req, res, access.claims.gid);
    // a GET's event stream, once under way, is noted as the proxy's: heartbeats, shutdown, revocation
    if (req.method === "GET") afterStreamOpens(res, () => deps.relays.streaming(exchange));
    const raw = req.method === "POST" ? await bodyWhole(req) : Buffer.alloc(0);
    if (raw === undefined || res.destroyed) return;
    if (raw === "over") return refuseBody(res);
    let body: unknown;
    try {
      body = raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
    } catch {
      return sendJsonRpcError(res, 400, null, PARSE_ERROR, "Parse error: the body is not JSON.");
    }
    if (deps.policy) {
      // the SDK's transport takes batches: each call of one would pass unjudged
      if (Array.isArray(body)) return refusedBatch(res);
      const verdict = await deps.policy(access, jsonRpcCall(raw));
      if (!verdict.allow) return refusedByPolicy(res, verdict, raw);
    }
    const { sub: user, client_id: clientId, gid: grantId } = access.claims;
    const refused = await bridge.handle(req, res, { user, clientId, grantId }, body);
    if (refused) sendJsonRpcError(res, refused.status, refused.id, refused.code, refused.message, refused.headers);
  };
}
