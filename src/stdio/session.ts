import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type RequestId,
} from "@modelcontextprotocol/sdk/types.js";
import type { Clock } from "../clock.js";
import type { ChildLink } from "./link.js";
import { BRIDGE_ERRORS, errorResponse, type Peer } from "./peer.js";

/** Called when the client's `initialize` opened the session, and when DELETE (or the bridge) ended it. */
export interface SessionEvents {
  opened(sessionId: string, session: BridgeSession): void;
  closed(sessionId: string): void;
}

/**
 * One client session of the initialize era (MCP 2025-03-26 … 2025-11-25 §Streamable HTTP), served by the
 * SDK's transport: `Mcp-Session-Id`, POST answers as event streams, the GET stream, DELETE. Its messages
 * go to the process through the link; an `initialize` is answered with the process's InitializeResult.
 */
export class BridgeSession implements Peer {
  readonly takesRequests = true;
  #getStreams = 0;
  readonly #transport: StreamableHTTPServerTransport;
  lastUsed: number;

  constructor(
    /** The client and user the session belongs to. */
    readonly owner: string,
    readonly link: ChildLink,
    private readonly clock: Clock,
    events: SessionEvents,
  ) {
    this.lastUsed = clock.now();
    this.#transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => events.opened(id, this),
      onsessionclosed: (id) => events.closed(id),
    });
    this.#transport.onmessage = (message) => this.#fromClient(message);
    this.#transport.onclose = () => link.leave(this);
    this.#transport.onerror = () => undefined;
    link.join(this);
  }

  get listening(): boolean {
    return this.#getStreams > 0;
  }

  deliver(message: JSONRPCMessage, relatedTo?: RequestId): void {
    this.#transport.send(message, relatedTo === undefined ? {} : { relatedRequestId: relatedTo }).catch(() => undefined);
  }

  /** One HTTP request of this session (or the `initialize` that opens it), its body already parsed. */
  async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    this.lastUsed = this.clock.now();
    if (req.method === "GET") {
      this.#getStreams++;
      res.once("close", () => this.#getStreams--);
      afterStreamOpens(res, () => this.link.listening(this));
    }
    await this.#transport.handleRequest(req, res, body);
  }

  /** The bridge ends the session (shutdown, or idle too long). */
  close(): Promise<void> {
    return this.#transport.close();
  }

  #fromClient(message: JSONRPCMessage): void {
    if (isJSONRPCRequest(message) && isInitializeRequest(message)) {
      const { id } = message;
      this.link.initialize(message.params).then(
        (result) => this.deliver({ jsonrpc: "2.0", id, result }, id),
        (error: Error) => this.deliver(errorResponse(id, BRIDGE_ERRORS.internalError, error.message), id),
      );
    } else if (isJSONRPCRequest(message)) void this.link.call(this, message);
    else if (isJSONRPCNotification(message)) {
      this.link.notify(this, message);
      // MCP §Cancellation: no answer follows, so the request's stream ends here
      const cancelled = message.method === "notifications/cancelled" ? (message.params?.requestId as RequestId | undefined) : undefined;
      if (cancelled !== undefined) this.#transport.closeSSEStream(cancelled);
    } else if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) this.link.answer(this, message as JSONRPCMessage & { id: RequestId });
  }
}

/**
 * `then`, once the SDK's transport has answered a GET with its event stream: a 200 written (and, a
 * microtask later, the stream registered). Here what waited for a stream goes down it; the endpoint
 * notes the stream for heartbeats, shutdown and revocation.
 */
export function afterStreamOpens(res: ServerResponse, then: () => void): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = (...args: unknown[]) => {
    const written = writeHead(...args);
    if (res.statusCode === 200) queueMicrotask(then);
    return written;
  };
}
