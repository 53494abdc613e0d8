import type { IncomingMessage, ServerResponse } from "node:http";
import { EventEmitter } from "node:events";
import { Readable, Writable } from "node:stream";
import { extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import type { Dispatcher } from "undici";
import { OAuthError, type ErrorLog } from "../errors.js";
import { scopeUnion } from "../scope.js";
import { storeKey, StoreUnavailableError } from "../store/store.js";
import { authenticate, bearerChallenge, type BearerDeps } from "./bearer.js";
import { clientHeaderPolicy, identityHeaders, requestHeadersForUpstream, responseHeadersForClient } from "./headers.js";
import { JSONRPC, requestId, sendJsonRpcError } from "./jsonrpc.js";
import { onClose, openedAfter, type Relays } from "./relays.js";
import { McpSessions, SessionOfAnother } from "./sessions.js";
import { holdStream, type StreamLimits } from "./streams.js";

/** docs/security.md HI2: the largest /mcp request body relayed. Content-Length is checked first; chunked bodies are counted as they stream. */
export const MCP_BODY_LIMIT = 4 * 1024 * 1024;
/** Bodies up to this size are read whole before they go upstream: one write, and an error can name the request's id. */
const SMALL_BODY = 64 * 1024;
/** How long a step-up challenge holds the grant's next refresh back (src/as/refresh.ts, refuseDuringStepUp): MCP clients refresh at once. */
const STEP_UP_TTL = 60;

export interface ProxyDeps extends BearerDeps {
  dispatcher: Dispatcher;
  /** The upstream MCP endpoint. */
  target: string;
  /** `headers` and, for `static` upstreams, the credentials: added to every request upstream. */
  upstreamHeaders: Readonly<Record<string, string>>;
  /** Send the user's identity upstream (opt-in per upstream). */
  identityHeaders: boolean;
  /** Whether the upstream takes each user's own token (chained OAuth), rather than fixed credentials or none. */
  userTokens: boolean;
  /** How long to wait for the upstream's response headers. */
  upstreamTimeoutMs: number;
  relays: Relays;
  /** Whose each upstream Mcp-Session-Id is (MU9). */
  sessions: McpSessions;
  /** Event streams open per grant and per client address (HI9). */
  streams: StreamLimits;
  /** The client's address, as `--trust-proxy` has it. */
  clientAddress: (req: IncomingMessage) => string;
  log: ErrorLog;
}

/**
 * POST|GET|DELETE /mcp (DESIGN §5): authenticate, then relay the request and the response as
 * streams, byte for byte, with the upstream half of the token in place of the client's.
 */
export function mcpProxy(deps: ProxyDeps) {
  const target = new URL(deps.target);
  const path = target.pathname + target.search;
  const forwardable = clientHeaderPolicy(deps.upstreamHeaders);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const length = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    const hasBody = req.method === "POST";
    if (hasBody && length !== undefined && length > MCP_BODY_LIMIT) return refuseBody(res);
    const access = await authenticate(req, deps);
    const { claims, identity } = access;
    const owner = McpSessions.owner(claims);
    const sent = req.headers["mcp-session-id"];
    const sessionId = Array.isArray(sent) ? sent.join(", ") : sent;
    // MCP transports §Session Management: a session that is not the caller's is answered as one that does not exist
    if (sessionId !== undefined && !(await deps.sessions.belongsTo(deps.resource, sessionId, owner)))
      return sendJsonRpcError(res, 404, null, JSONRPC.sessionNotFound, "Session not found");
    if (req.method === "GET" && !holdStream(deps.streams, claims.gid, deps.clientAddress(req), res)) return;
    // a grant from before the operator switched this upstream to fixed credentials never overrides them
    const upstreamAccessToken = deps.userTokens ? access.upstreamAccessToken : "";
    const fixed = deps.identityHeaders
      ? { ...deps.upstreamHeaders, ...identityHeaders(claims.sub, identity, upstreamAccessToken !== "") }
      : deps.upstreamHeaders;

    const exchange = deps.relays.add(req, res);
    // The client went away (or, in MCP 2026-07-28, cancelled by closing the stream): stop upstream too.
    // undici listens for "abort" only while its request runs, so after a finished one this does nothing.
    const cancel = new EventEmitter();
    onClose(res, () => {
      deps.relays.delete(exchange);
      cancel.emit("abort");
    });

    // Node's parser ends a body at its Content-Length, already checked above: only chunked bodies need counting
    let body: Buffer | Readable | null | undefined = null;
    let overLimit = () => false;
    if (hasBody && length !== undefined && length <= SMALL_BODY) body = await readWhole(req);
    else if (hasBody && length !== undefined) body = req;
    else if (hasBody) ({ chunks: body, overLimit } = counted(req, MCP_BODY_LIMIT));
    if (body === undefined || res.destroyed) return;

    let refused: Pick<Dispatcher.StreamFactoryData, "statusCode" | "headers"> | undefined;
    try {
      await deps.dispatcher.stream(
        {
          origin: target.origin,
          path,
          method: req.method as Dispatcher.HttpMethod,
          headers: requestHeadersForUpstream(req.headers, upstreamAccessToken, fixed, forwardable),
          body,
          signal: cancel,
          headersTimeout: deps.upstreamTimeoutMs,
          bodyTimeout: 0,
        },
        ({ statusCode, headers }) => {
          // A refusal of the user's token is the client's to fix; any refusal of the gateway's own credentials (or none) is not
          if (statusCode === 401 || (statusCode === 403 && (!upstreamAccessToken || upstreamChallenge(headers).error === "insufficient_scope"))) {
            refused = { statusCode, headers };
            return discard();
          }
          const sse = String(headers["content-type"] ?? "").startsWith("text/event-stream");
          const out = responseHeadersForClient(headers);
          // MCP transports (2026-07-28): event streams SHOULD tell buffering proxies such as nginx not to buffer
          if (sse) out["x-accel-buffering"] = "no";
          const open = () => {
            res.writeHead(statusCode, out);
            if (!sse) return res;
            res.flushHeaders();
            return deps.relays.eventStream(exchange);
          };
          // the session's binding is written before the client can name it anywhere, on any instance
          const recorded = deps.sessions.record(deps.resource, {
            method: req.method,
            sent: sessionId,
            owner,
            status: statusCode,
            issued: headers["mcp-session-id"],
          });
          return recorded ? openedAfter(recorded, open) : open();
        },
      );
    } catch (error) {
      if (overLimit()) return refuseBody(res);
      if (error instanceof StoreUnavailableError) throw error;
      if (res.headersSent || res.destroyed) return;
      if (error instanceof SessionOfAnother) {
        deps.log.error(`the upstream ${target.origin} answered one user with a session id bound to another`);
        return sendJsonRpcError(res, 502, requestId(Buffer.isBuffer(body) ? body : undefined), JSONRPC.internalError, error.message);
      }
      return upstreamFailed(res, error, Buffer.isBuffer(body) ? body : undefined, deps);
    }

    if (refused && !upstreamAccessToken) {
      // The gateway's own credentials (or none) were refused: no authorization by the client can fix that
      deps.log.error(`the upstream ${target.origin} refused the gateway's credentials with HTTP ${refused.statusCode}`);
      return sendJsonRpcError(
        res,
        502,
        requestId(Buffer.isBuffer(body) ? body : undefined),
        JSONRPC.internalError,
        "The upstream refused the gateway's credentials.",
      );
    }
    if (refused?.statusCode === 401) {
      // The next refresh of this grant must not hand out the same upstream token again.
      await deps.store.put(storeKey.upstreamRejected(claims.gid), true, deps.refreshTokenTtl);
      // The upstream's challenge would send the client to the upstream's authorization server.
      throw rewritten(deps, req, 401, {
        code: "invalid_token",
        description: "The upstream rejected the access token; refresh it or authorize again.",
      });
    }
    if (refused) {
      // MCP Authorization §Runtime Insufficient Scope Errors (2026-07-28): name every scope the operation needs,
      // the grant's with the upstream's, since the client re-authorizes with exactly what the challenge lists
      const asked = upstreamChallenge(refused.headers).scope;
      const scope = scopeUnion(claims.scope, asked);
      // only a scope the grant lacks can be had by authorizing again
      if (scope !== scopeUnion(claims.scope)) await deps.store.put(storeKey.stepUp(claims.gid), scope, STEP_UP_TTL);
      throw rewritten(deps, req, 403, {
        code: "insufficient_scope",
        description: "The upstream needs more scope for this operation.",
        ...(scope ? { scope } : {}),
      });
    }
  };
}

const discard = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });

/**
 * 502 when the upstream cannot be reached or breaks off before answering, 504 when it does not
 * answer in time: each with a JSON-RPC error carrying the request's id, so the client can tell
 * which call failed.
 */
function upstreamFailed(res: ServerResponse, error: unknown, body: Buffer | undefined, deps: ProxyDeps): void {
  const code = (error as { code?: unknown }).code;
  const timeout = code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT";
  deps.log.error(`upstream MCP request failed: ${typeof code === "string" ? code : (error as Error).name}`);
  const id = requestId(body);
  if (timeout)
    return sendJsonRpcError(res, 504, id, JSONRPC.requestTimeout, `The upstream MCP server did not answer within ${deps.upstreamTimeoutMs / 1000} s.`);
  sendJsonRpcError(res, 502, id, JSONRPC.internalError, "The upstream MCP server could not be reached.");
}

/**
 * 413, and the connection closes after it: the rest of the body is never read (RFC 9110 §15.5.14).
 * Until then the socket stays whole, so the client reads the answer rather than a reset.
 */
function refuseBody(res: ServerResponse): never {
  res.setHeader("Connection", "close");
  throw new OAuthError("invalid_request", `The request body is larger than ${MCP_BODY_LIMIT / 1024 / 1024} MB.`, 413);
}

/** The whole body, or undefined when the client went away before sending it all. */
function readWhole(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.once("close", () => req.complete || resolve(undefined));
  });
}

/** The request body as it streams, ending in an error once more than `limit` bytes went by. */
function counted(source: Readable, limit: number): { chunks: Readable; overLimit: () => boolean } {
  let total = 0;
  async function* chunks() {
    for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw new Error("request body over the limit");
      yield chunk;
    }
  }
  return { chunks: Readable.from(chunks(), { objectMode: false }), overLimit: () => total > limit };
}

function rewritten(
  deps: BearerDeps,
  request: IncomingMessage,
  status: number,
  error: { code: "invalid_token" | "insufficient_scope"; description: string; scope?: string },
): OAuthError {
  return new OAuthError(error.code, error.description, status, { "WWW-Authenticate": bearerChallenge(deps, request, error) });
}

function upstreamChallenge(headers: Record<string, string | string[] | undefined>) {
  const value = headers["www-authenticate"];
  const response = new globalThis.Response(null, { headers: value ? { "www-authenticate": Array.isArray(value) ? value.join(", ") : value } : {} });
  return extractWWWAuthenticateParams(response);
}
