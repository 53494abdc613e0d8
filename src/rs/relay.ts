import type { IncomingMessage, ServerResponse } from "node:http";
import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import type { Dispatcher } from "undici";
import type { RequestBody } from "./body.js";
import { requestHeadersForUpstream, responseHeadersForClient } from "./headers.js";
import { isRefusal, type UpstreamRefusal } from "./refusals.js";
import { onClose, openedAfter, type Exchange, type Relays } from "./relays.js";
import type { McpSessions } from "./sessions.js";

export interface RelayDeps {
  dispatcher: Dispatcher;
  /** How long to wait for the upstream's response headers. */
  upstreamTimeoutMs: number;
  relays: Relays;
  /** Whose each upstream Mcp-Session-Id is (MU9). */
  sessions: McpSessions;
}

/** One request as it goes upstream. */
export interface Outbound {
  /** The upstream MCP endpoint, split once per mount. */
  origin: string;
  path: string;
  /** The gateway's resource for this upstream: where its sessions are bound. */
  resource: string;
  body: RequestBody["body"];
  /** The user's token upstream, or "" when the gateway's own credentials (or none) are used. */
  upstreamAccessToken: string;
  /** Headers every request to this upstream carries (and the user's identity, when sent). */
  fixed: Readonly<Record<string, string>>;
  forwardable: (name: string) => boolean;
  /** The Mcp-Session-Id the client sent, and who the caller is. */
  sessionId: string | undefined;
  owner: string;
}

/** One exchange in flight, and the signal that stops its upstream request. */
export interface Tracked {
  exchange: Exchange;
  cancel: EventEmitter;
}

/** Note the exchange in flight (heartbeats, shutdown) from before its body is read, until the response closes. */
export function track(relays: Relays, req: IncomingMessage, res: ServerResponse): Tracked {
  const exchange = relays.add(req, res);
  // The client went away (or, in MCP 2026-07-28, cancelled by closing the stream): stop upstream too.
  // undici listens for "abort" only while its request runs, so after a finished one this does nothing.
  const cancel = new EventEmitter();
  onClose(res, () => {
    relays.delete(exchange);
    cancel.emit("abort");
  });
  return { exchange, cancel };
}

/**
 * Relay the request and the response as streams, byte for byte. A refusal the client must hear about as
 * a challenge (src/rs/refusals.ts) is not relayed: it is returned.
 */
export async function relay(
  deps: RelayDeps,
  req: IncomingMessage,
  res: ServerResponse,
  { exchange, cancel }: Tracked,
  out: Outbound,
): Promise<UpstreamRefusal | undefined> {
  let refused: UpstreamRefusal | undefined;
  await deps.dispatcher.stream(
    {
      origin: out.origin,
      path: out.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: requestHeadersForUpstream(req.headers, out.upstreamAccessToken, out.fixed, out.forwardable),
      body: out.body,
      signal: cancel,
      headersTimeout: deps.upstreamTimeoutMs,
      bodyTimeout: 0,
    },
    ({ statusCode, headers }) => {
      if (isRefusal(statusCode, headers, out.upstreamAccessToken)) {
        refused = { statusCode, headers };
        return discard();
      }
      const sse = String(headers["content-type"] ?? "").startsWith("text/event-stream");
      const forClient = responseHeadersForClient(headers);
      // MCP transports (2026-07-28): event streams SHOULD tell buffering proxies such as nginx not to buffer
      if (sse) forClient["x-accel-buffering"] = "no";
      const open = () => {
        res.writeHead(statusCode, forClient);
        if (!sse) return res;
        res.flushHeaders();
        return deps.relays.eventStream(exchange);
      };
      // the session's binding is written before the client can name it anywhere, on any instance
      const recorded = deps.sessions.record(out.resource, {
        method: req.method,
        sent: out.sessionId,
        owner: out.owner,
        status: statusCode,
        issued: headers["mcp-session-id"],
      });
      return recorded ? openedAfter(recorded, open) : open();
    },
  );
  return refused;
}

const discard = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });
