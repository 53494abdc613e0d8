import type { ServerResponse } from "node:http";
import { Writable } from "node:stream";
import type { Dispatcher } from "undici";
import type { RequestBody } from "./body.js";
import { requestHeadersForUpstream, responseHeadersForClient } from "./headers.js";
import { isRefusal, type UpstreamRefusal } from "./refusals.js";
import { openedAfter, type Exchange, type Relays } from "./relays.js";
import type { McpSessions } from "./sessions.js";

export interface RelayDeps {
  dispatcher: Dispatcher;
  /** How long to wait for the upstream's response headers. */
  upstreamTimeoutMs: number;
  relays: Relays;
  /** Whose each upstream Mcp-Session-Id is (MU9). */
  sessions: McpSessions;
}

/** One upstream MCP endpoint, worked out once per mount. */
export interface Target {
  deps: RelayDeps;
  /** The upstream MCP endpoint, split once per mount. */
  origin: string;
  path: string;
  /** The gateway's resource for this upstream: where its sessions are bound. */
  resource: string;
  forwardable: (name: string) => boolean;
}

/** One request as it goes upstream, and (undici's `opaque`) what its answer needs: no closure per request. */
export interface Outbound {
  target: Target;
  exchange: Exchange;
  body: RequestBody["body"];
  /** The user's token upstream, or "" when the gateway's own credentials (or none) are used. */
  upstreamAccessToken: string;
  /** Headers every request to this upstream carries (and the user's identity, when sent). */
  fixed: Readonly<Record<string, string>>;
  /** The Mcp-Session-Id the client sent, and who the caller is. */
  sessionId: string | undefined;
  owner: string;
  /** Set when the upstream's answer is a refusal the client must hear about as a challenge. */
  refused: UpstreamRefusal | undefined;
}

/**
 * Relay the request and the response as streams, byte for byte. A refusal the client must hear about as
 * a challenge (src/rs/refusals.ts) is not relayed: it is returned. The exchange is the request's abort
 * signal: its response closing stops the upstream request.
 */
export async function relay(out: Outbound): Promise<UpstreamRefusal | undefined> {
  const { target, exchange } = out;
  await target.deps.dispatcher.stream<Outbound>(
    {
      origin: target.origin,
      path: target.path,
      method: exchange.req.method as Dispatcher.HttpMethod,
      headers: requestHeadersForUpstream(exchange.req.headers, out.upstreamAccessToken, out.fixed, target.forwardable),
      body: out.body,
      signal: exchange,
      headersTimeout: target.deps.upstreamTimeoutMs,
      bodyTimeout: 0,
      opaque: out,
    },
    answer,
  );
  return out.refused;
}

/** Where the upstream's answer goes: the client's response, once any session it names is recorded. */
function answer({ statusCode, headers, opaque: out }: Dispatcher.StreamFactoryData<Outbound>): Writable {
  if (isRefusal(statusCode, headers, out.upstreamAccessToken)) {
    out.refused = { statusCode, headers };
    return discard();
  }
  const { req, res } = out.exchange;
  const sse = String(headers["content-type"] ?? "").startsWith("text/event-stream");
  const forClient = responseHeadersForClient(headers);
  // MCP transports (2026-07-28): event streams SHOULD tell buffering proxies such as nginx not to buffer
  if (sse) forClient["x-accel-buffering"] = "no";
  const issued = headers["mcp-session-id"];
  // the session's binding is written before the client can name it anywhere, on any instance
  const recorded =
    issued === undefined && req.method !== "DELETE"
      ? undefined
      : out.target.deps.sessions.record(out.target.resource, { method: req.method, sent: out.sessionId, owner: out.owner, status: statusCode, issued });
  if (recorded) return openedAfter(recorded, () => open(out, res, statusCode, forClient, sse));
  return open(out, res, statusCode, forClient, sse);
}

function open(out: Outbound, res: ServerResponse, statusCode: number, forClient: Record<string, string | string[]>, sse: boolean): Writable {
  res.writeHead(statusCode, forClient);
  if (!sse) return res;
  res.flushHeaders();
  return out.target.deps.relays.eventStream(out.exchange);
}

const discard = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });
