import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import type { Request, Response } from "express";
import { request as undiciRequest, type Dispatcher } from "undici";
import { OAuthError } from "../errors.js";
import { keys } from "../store/store.js";
import type { ErrorLog } from "../errors.js";
import { authenticate, bearerChallenge, type BearerDeps } from "./bearer.js";
import { requestHeadersForUpstream, responseHeadersForClient } from "./headers.js";

/** docs/security.md HI2: the largest /mcp request body relayed; counted as it streams, never buffered. */
export const MCP_BODY_LIMIT = 4 * 1024 * 1024;

const tooLarge = () => new OAuthError("invalid_request", `The request body is larger than ${MCP_BODY_LIMIT / 1024 / 1024} MB.`, 413);

export interface ProxyDeps extends BearerDeps {
  dispatcher: Dispatcher;
  /** The upstream MCP endpoint. */
  target: string;
  log: ErrorLog;
}

/**
 * POST|GET|DELETE /mcp (DESIGN §5): authenticate, then relay the request and the response as
 * streams, byte for byte, with the upstream half of the token in place of the client's.
 */
export function mcpProxy(deps: ProxyDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const hasBody = req.method === "POST";
    if (hasBody && Number(req.headers["content-length"] ?? 0) > MCP_BODY_LIMIT) return refuseBody(res);
    const { claims, upstreamAccessToken } = await authenticate(req.headers, deps);
    const abort = new AbortController();
    // The client went away (or, in MCP 2026-07-28, cancelled by closing the stream): stop upstream too.
    res.on("close", () => abort.abort());
    // Node's parser ends a body at its Content-Length, already checked above: only chunked bodies need counting
    const body = !hasBody ? undefined : req.headers["content-length"] !== undefined ? uncounted(req) : counted(req, MCP_BODY_LIMIT);

    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await undiciRequest(deps.target, {
        method: req.method,
        headers: requestHeadersForUpstream(req.headers, upstreamAccessToken),
        body: body ? body.chunks : null,
        dispatcher: deps.dispatcher,
        signal: abort.signal,
      });
    } catch (error) {
      if (body?.overLimit()) return refuseBody(res);
      if (abort.signal.aborted) return;
      deps.log.error("upstream MCP request failed", error);
      return badGateway(res);
    }

    if (upstream.statusCode === 401) {
      await upstream.body.dump();
      // The next refresh of this grant must not hand out the same upstream token again.
      await deps.store.put(keys.upstreamRejected(claims.gid), true, deps.refreshTokenTtl);
      // The upstream's challenge would send the client to the upstream's authorization server.
      throw await rewritten(deps, 401, { code: "invalid_token", description: "The upstream rejected the access token; refresh it or authorize again." });
    }
    if (upstream.statusCode === 403) {
      const challenge = upstreamChallenge(upstream.headers);
      if (challenge.error === "insufficient_scope") {
        await upstream.body.dump();
        throw await rewritten(deps, 403, {
          code: "insufficient_scope",
          description: "The upstream needs more scope for this operation.",
          ...(challenge.scope ? { scope: challenge.scope } : {}),
        });
      }
    }

    res.status(upstream.statusCode);
    // setHeader, not Express's set: the upstream's headers pass unchanged (no added charset)
    for (const [name, value] of Object.entries(responseHeadersForClient(upstream.headers))) res.setHeader(name, value);
    if (String(upstream.headers["content-type"] ?? "").startsWith("text/event-stream")) res.setHeader("X-Accel-Buffering", "no");
    res.flushHeaders();
    try {
      await pipeline(upstream.body, res);
    } catch {
      // One side went away mid-stream; the close handler has already stopped the other.
      res.destroy();
    }
  };
}

/**
 * 413, and the connection closes after it: the rest of the body is never read (RFC 9110 §15.5.14).
 * Until then the socket stays whole, so the client reads the answer rather than a reset.
 */
function refuseBody(res: Response): never {
  res.setHeader("Connection", "close");
  throw tooLarge();
}

const uncounted = (source: Readable) => ({ chunks: source, overLimit: () => false });

/** The request body as it streams, ending in an error once more than `limit` bytes went by (chunked bodies too). */
function counted(source: Readable, limit: number): { chunks: Readable; overLimit: () => boolean } {
  let total = 0;
  async function* chunks() {
    for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw tooLarge();
      yield chunk;
    }
  }
  return { chunks: Readable.from(chunks(), { objectMode: false }), overLimit: () => total > limit };
}

async function rewritten(
  deps: BearerDeps,
  status: number,
  error: { code: "invalid_token" | "insufficient_scope"; description: string; scope?: string },
): Promise<OAuthError> {
  return new OAuthError(error.code, error.description, status, { "WWW-Authenticate": await bearerChallenge(deps, error) });
}

function upstreamChallenge(headers: Record<string, string | string[] | undefined>) {
  const value = headers["www-authenticate"];
  const response = new globalThis.Response(null, { headers: value ? { "www-authenticate": Array.isArray(value) ? value.join(", ") : value } : {} });
  return extractWWWAuthenticateParams(response);
}

function badGateway(res: Response): void {
  if (res.headersSent) return void res.destroy();
  res.status(502).json({ jsonrpc: "2.0", id: null, error: { code: -32603, message: "The upstream MCP server could not be reached." } });
}
