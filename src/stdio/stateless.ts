import type { IncomingMessage, ServerResponse } from "node:http";
import {
  LATEST_PROTOCOL_VERSION,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type InitializeRequest,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from "@modelcontextprotocol/sdk/types.js";
import type { ChildLink } from "./link.js";
import { BRIDGE_ERRORS, errorResponse, type Peer } from "./peer.js";

/** The revision without sessions (MCP 2026-07-28): every request says who it is in `_meta`. */
export const STATELESS_VERSION = "2026-07-28";
const META = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  clientInfo: "io.modelcontextprotocol/clientInfo",
} as const;
/** MCP 2026-07-28: list results say how long they may be cached, and by whom. */
const LISTS = new Set(["tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"]);

type Meta = Record<string, unknown>;

/** Whether a POST speaks the 2026-07-28 revision: `_meta` names a protocol version, or the header names one after the initialize era. */
export function isStateless(message: unknown, headerVersion: string | undefined): boolean {
  const meta = metaOf(message);
  return (meta !== undefined && META.protocolVersion in meta) || (headerVersion !== undefined && headerVersion >= STATELESS_VERSION);
}

/** Why a 2026-07-28 request is refused before it reaches the process (MCP 2026-07-28 §Transport), or undefined. */
export function refusal(message: unknown, headers: IncomingMessage["headers"]): { status: number; code: number; message: string } | undefined {
  const refuse = (status: number, code: number, text: string) => ({ status, code, message: text });
  if (typeof message !== "object" || message === null || Array.isArray(message) || !("method" in message))
    return refuse(400, BRIDGE_ERRORS.invalidRequest, "A 2026-07-28 request is one JSON-RPC message.");
  const meta = metaOf(message) ?? {};
  const version = meta[META.protocolVersion];
  const header = headers["mcp-protocol-version"];
  if (header === undefined || header !== version)
    return refuse(400, BRIDGE_ERRORS.headerMismatch, "MCP-Protocol-Version does not match _meta's protocol version.");
  if (version !== STATELESS_VERSION) return refuse(400, BRIDGE_ERRORS.unsupportedVersion, `Unsupported protocol version; supported: ${STATELESS_VERSION}.`);
  const method = headers["mcp-method"];
  if (method !== undefined && method !== message.method) return refuse(400, BRIDGE_ERRORS.headerMismatch, "Mcp-Method does not match the request's method.");
  if (META.clientCapabilities in meta) return undefined;
  return refuse(400, -32602, `Invalid params: missing _meta key ${META.clientCapabilities}.`);
}

/**
 * One 2026-07-28 request: the process (initialize era) is initialized by the bridge with the client's
 * declared capabilities; `server/discover` is answered from its InitializeResult; anything else is relayed
 * without the `_meta` keys of the newer revision. The answer is an event stream when the client accepts
 * one (progress notifications travel on it), else JSON. Closing the response cancels the request.
 */
export async function statelessCall(link: ChildLink, req: IncomingMessage, res: ServerResponse, message: JSONRPCMessage): Promise<void> {
  if (!isJSONRPCRequest(message)) {
    if (isJSONRPCNotification(message) && message.method !== "notifications/cancelled") link.notify(STATELESS_PEER, message);
    return void res.writeHead(202).end();
  }
  const peer = new RequestPeer(res, message.id, message.method, (req.headers.accept ?? "").includes("text/event-stream"));
  let ready: InitializeResult;
  try {
    ready = await link.initialize(initializeParams(metaOf(message) ?? {}));
  } catch (error) {
    return peer.deliver(errorResponse(message.id, BRIDGE_ERRORS.internalError, (error as Error).message));
  }
  if (message.method === "server/discover") return peer.deliver({ jsonrpc: "2.0", id: message.id, result: discovered(ready) });
  res.once("close", () => peer.done || link.notify(peer, { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: message.id } }));
  await link.call(peer, withoutNewMeta(message));
}

/** What `server/discover` answers: the process's InitializeResult in the 2026-07-28 shape. */
function discovered(result: InitializeResult): Record<string, unknown> {
  const { capabilities, serverInfo, instructions } = result;
  return {
    resultType: "complete",
    ttlMs: 0,
    cacheScope: "private",
    supportedVersions: [STATELESS_VERSION],
    capabilities,
    serverInfo,
    ...(instructions ? { instructions } : {}),
  };
}

function initializeParams(meta: Meta): InitializeRequest["params"] {
  const capabilities = (meta[META.clientCapabilities] ?? {}) as InitializeRequest["params"]["capabilities"];
  const clientInfo = (meta[META.clientInfo] ?? { name: "mcp-oauth-gateway", version: "1" }) as InitializeRequest["params"]["clientInfo"];
  return { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities, clientInfo };
}

function withoutNewMeta(request: JSONRPCRequest): JSONRPCRequest {
  const meta: Meta = { ...request.params?._meta };
  for (const key of Object.values(META)) delete meta[key];
  return { ...request, params: { ...request.params, _meta: meta } };
}

/** One 2026-07-28 request's response: its answer, and the notifications of its call when it streams. */
class RequestPeer implements Peer {
  readonly takesRequests = false;
  readonly listening = false;
  done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly id: RequestId,
    private readonly method: string,
    private readonly stream: boolean,
  ) {}

  deliver(message: JSONRPCMessage): void {
    if (this.done || this.res.destroyed) return;
    const answer = (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && message.id === this.id;
    const sent = answer && isJSONRPCResultResponse(message) ? completed(message, this.method) : message;
    if (this.stream) {
      if (!this.res.headersSent) this.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" });
      this.res.write(`event: message\ndata: ${JSON.stringify(sent)}\n\n`);
      if (answer) this.#end();
      return;
    }
    if (!answer) return;
    // MCP 2026-07-28 §Transport: an unknown method is answered 404
    const status = isJSONRPCErrorResponse(message) && message.error.code === -32601 ? 404 : 200;
    const body = JSON.stringify(sent);
    this.res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    this.#end(body);
  }

  #end(body?: string): void {
    this.done = true;
    this.res.end(body);
  }
}

/** MCP 2026-07-28: a result says it is complete; a list's, that it is private to this user and not to be cached. */
function completed(message: JSONRPCMessage & { result: Record<string, unknown> }, method: string): JSONRPCMessage {
  const cache = LISTS.has(method) ? { ttlMs: 0, cacheScope: "private" } : {};
  return { ...message, result: { resultType: "complete", ...cache, ...message.result } };
}

/** Notifications of a 2026-07-28 client that concern no request of it. */
const STATELESS_PEER: Peer = { takesRequests: false, listening: false, deliver: () => undefined };

function metaOf(message: unknown): Meta | undefined {
  const params = (message as { params?: { _meta?: unknown } } | null)?.params;
  const meta = params?._meta;
  return typeof meta === "object" && meta !== null ? (meta as Meta) : undefined;
}
