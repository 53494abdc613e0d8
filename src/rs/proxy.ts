import type { IncomingMessage, ServerResponse } from "node:http";
import type { ErrorLog } from "../errors.js";
import type { PublicOrigins } from "../origins.js";
import type { TokenContext } from "../grants/format.js";
import type { ValidatedAccess } from "../grants/validate.js";
import { typedSlash, type Mount } from "../upstream/mounts.js";
import { authenticate } from "./bearer.js";
import { declaredLength, MCP_BODY_LIMIT, refuseBody, requestBody, requestBodyWhole, wholeBody } from "./body.js";
import { clientHeaderPolicy, identityHeaders } from "./headers.js";
import { JSONRPC, sendJsonRpcError } from "./jsonrpc.js";
import { isBatch, jsonRpcCall, type McpPolicy } from "./policy.js";
import { answerRefusal, refusedBatch, refusedByPolicy, relayFailed, type RefusalDeps } from "./refusals.js";
import { relay, type Outbound, type RelayDeps, type Target } from "./relay.js";
import { McpSessions } from "./sessions.js";
import { holdStream, type StreamLimits } from "./streams.js";

/** What every mounted upstream's proxy shares. */
export interface ProxyDeps extends TokenContext, RelayDeps {
  /** The gateway's names: a challenge names the metadata URL under the one the request used (src/origins.ts). */
  origins: PublicOrigins;
  /** Event streams open per grant and per client address (HI9). */
  streams: StreamLimits;
  /** The client's address, as `--trust-proxy` has it. */
  clientAddress: (req: IncomingMessage) => string;
  log: ErrorLog;
  /** Installed to restrict calls (src/rs/policy.ts); without one, every authenticated request is relayed and no body parsed. */
  policy?: McpPolicy;
}

/**
 * POST|GET|DELETE /mcp of one upstream (DESIGN §5): authenticate, ask the policy, then relay the request
 * and the response as streams, byte for byte, with the upstream half of the token in place of the client's.
 * Errors are thrown for the caller to answer.
 */
export function mcpProxy(mount: Mount, deps: ProxyDeps) {
  const own = refusalDeps(mount, deps);
  const { origin, pathname, search } = own.target;
  const target: Target = { deps, origin, path: pathname + search, resource: mount.resource, forwardable: clientHeaderPolicy(mount.upstreamHeaders) };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const length = declaredLength(req);
    if (req.method === "POST" && length !== undefined && length > MCP_BODY_LIMIT) return refuseBody(res);
    const access = await authenticate(req, own);
    const owner = McpSessions.owner(access.claims);
    const sent = req.headers["mcp-session-id"];
    const sessionId = Array.isArray(sent) ? sent.join(", ") : sent;
    // MCP transports §Session Management: a session that is not the caller's is answered as one that does not exist
    if (sessionId !== undefined && !(await deps.sessions.belongsTo(mount.resource, sessionId, owner)))
      return sendJsonRpcError(res, 404, null, JSONRPC.sessionNotFound, "Session not found");
    if (req.method === "GET" && !holdStream(deps.streams, access.claims.gid, deps.clientAddress(req), res)) return;
    // a grant from before the operator switched this upstream to fixed credentials never overrides them
    const upstreamAccessToken = mount.signsUsersIn ? access.upstreamAccessToken : "";
    const exchange = deps.relays.add(req, res, access.claims.gid);
    // an installed policy reads every body whole, so that no call or batch passes it streamed
    const read = deps.policy ? await requestBodyWhole(req, res) : await requestBody(req, length);
    if (read === undefined || res.destroyed) return;
    if (deps.policy) {
      if (isBatch(wholeBody(read.body))) return refusedBatch(res);
      const verdict = await deps.policy(access, jsonRpcCall(wholeBody(read.body)));
      if (!verdict.allow) return refusedByPolicy(res, verdict, wholeBody(read.body));
    }
    const fixed = fixedHeaders(mount, access, upstreamAccessToken !== "");
    const out: Outbound = { target, exchange, body: read.body, upstreamAccessToken, fixed, sessionId, owner, refused: undefined };
    let refused;
    try {
      refused = await relay(out);
    } catch (error) {
      if (read.overLimit()) return refuseBody(res);
      return relayFailed(own, res, error, wholeBody(read.body));
    }
    if (refused) await answerRefusal(own, req, res, refused, { claims: access.claims, upstreamAccessToken }, wholeBody(read.body));
  };
}

/** This upstream's part of a challenge and of an error about it. */
function refusalDeps(mount: Mount, deps: ProxyDeps): RefusalDeps & { upstreamTimeoutMs: number } {
  return {
    ...deps,
    resource: mount.resource,
    resourceMetadataUrl: (request) => mount.metadataUrlAt(deps.origins.forHost(request.headers.host), typedSlash(request.url)),
    scopes: () => mount.advertisedScopes(),
    target: new URL(mount.config.resource),
  };
}

/** The headers every request to this upstream carries, and the user's identity where the upstream opted in. */
function fixedHeaders(mount: Mount, { claims, identity }: ValidatedAccess, withUserToken: boolean): Readonly<Record<string, string>> {
  return mount.config.identityHeaders ? { ...mount.upstreamHeaders, ...identityHeaders(claims.sub, identity, withUserToken) } : mount.upstreamHeaders;
}
