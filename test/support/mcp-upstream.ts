import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { Arrivals } from "./arrivals.js";

export interface UpstreamRequest {
  method: string;
  authorization: string | undefined;
  sessionId: string | undefined;
  /** A copy of every header the request carried. */
  headers: IncomingHttpHeaders;
}

export interface McpUpstreamOptions {
  /** An API-key server: a request without exactly this header value is refused with 401 (it has no OAuth, so no challenge). */
  requireHeader?: { name: string; value: string };
}

export interface McpUpstream {
  /** `<origin>/mcp` */
  url: string;
  /** Every HTTP request received, in order. */
  requests: UpstreamRequest[];
  /** Each session's MCP server, by Mcp-Session-Id. */
  sessions: Map<string, McpServer>;
  /** Session ids whose standalone GET stream is open: from then on, notifications outside a request go down it. */
  openStreams: Arrivals<string>;
  close(): Promise<void>;
}

/**
 * A remote MCP server as the MCP SDK builds one: Streamable HTTP on node:http, stateful (Mcp-Session-Id,
 * a standalone GET stream per session), one `build()` server per session. It checks no token; it
 * records the one each request carries. With `requireHeader` it checks an API key instead.
 */
export async function startMcpUpstream(build: () => McpServer, opts: McpUpstreamOptions = {}): Promise<McpUpstream> {
  const required = opts.requireHeader && { name: opts.requireHeader.name.toLowerCase(), value: opts.requireHeader.value };
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const sessions = new Map<string, McpServer>();
  const requests: UpstreamRequest[] = [];
  const openStreams = new Arrivals<string>();

  const http = createServer(async (req, res) => {
    const sessionId = req.headers["mcp-session-id"] as string | undefined;
    requests.push({ method: req.method!, authorization: req.headers.authorization, sessionId, headers: { ...req.headers } });
    if (required && req.headers[required.name] !== required.value)
      return void res.writeHead(401, { "content-type": "application/json" }).end('{"error":"invalid api key"}');
    let transport = sessionId === undefined ? undefined : transports.get(sessionId);
    if (!transport && sessionId === undefined && req.method === "POST") {
      const server = build();
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        onsessioninitialized: (id) => {
          transports.set(id, created);
          sessions.set(id, server);
        },
      });
      await server.connect(created);
      transport = created;
    }
    // MCP transports §Session Management: an unknown session id is answered 404
    if (!transport)
      return void res
        .writeHead(404, { "content-type": "application/json" })
        .end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
    if (req.method === "GET" && sessionId !== undefined) onHeaders(res, () => res.statusCode === 200 && openStreams.push(sessionId));
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));

  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    requests,
    sessions,
    openStreams,
    close: async () => {
      for (const transport of transports.values()) await transport.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** Call `then` once the response's status and headers are written (the SDK has registered the stream by then). */
function onHeaders(res: ServerResponse, then: () => void): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = (...args: unknown[]) => {
    const written = writeHead(...args);
    then();
    return written;
  };
}
