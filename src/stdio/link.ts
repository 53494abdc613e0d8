import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type InitializeRequest,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../log.js";
import type { StdioChild } from "./child.js";
import { BRIDGE_ERRORS, errorResponse, type Peer } from "./peer.js";

/** The notifications a shared process may send every session: a list of tools, prompts or resources changed. */
const LIST_CHANGED = /^notifications\/[a-z]+\/list_changed$/;
/** How long a process gets to answer the bridge's `initialize`. */
const INITIALIZE_TIMEOUT_MS = 30_000;
/** How long a request of the process, made outside any call, waits for a session to open its GET stream. */
const LISTEN_WAIT_MS = 10_000;

type ProgressToken = string | number;
type Call = { kind: "call"; peer: Peer; id: RequestId; token: ProgressToken | undefined; release: () => void };
type Handshake = { kind: "initialize"; resolve: (result: InitializeResult) => void; reject: (error: Error) => void };

/**
 * One stdio process as every client of it sees it (the pool's process key). The process speaks the
 * initialize era to one peer, the bridge; clients are multiplexed over it: each request gets the
 * bridge's own id (and its progress token that id), mapped back on the answer. The process is
 * initialized once per generation, with the first client's parameters; a new generation (a restart)
 * is initialized again before its first call, so sessions outlive processes. A `shared` process is thus
 * told the capabilities and clientInfo of whichever user's client came first (docs/security.md ST2).
 */
export class ChildLink {
  #child: StdioChild | undefined;
  #generation = -1;
  #ready: Promise<InitializeResult> | undefined;
  #initParams: InitializeRequest["params"] | undefined;
  #next = 0;
  readonly #pending = new Map<number, Call | Handshake>();
  /** Requests of the process to a client, by the id the client saw. */
  readonly #asked = new Map<string, { peer: Peer; childId: RequestId }>();
  /** Session-era clients, reached by notifications of no request of theirs. */
  readonly #peers = new Set<Peer>();
  /** Requests of the process made outside any call while no session listened (a server asks for roots right after `initialized`). */
  readonly #parked: { request: JSONRPCRequest; timer: NodeJS.Timeout }[] = [];

  constructor(
    readonly server: string,
    private readonly log: Pick<Logger, "warn">,
    /** One process for every user (`shared`): what no call of a session asked for reaches no one's session but list changes. */
    private readonly shared = false,
  ) {}

  /** The process a request was given by the pool: when it is not the one linked, the next call initializes it. */
  attach(child: StdioChild): void {
    if (this.#child === child && this.#generation === child.generation) return;
    this.#child = child;
    this.#generation = child.generation;
    this.#ready = undefined;
    const generation = child.generation;
    const current = () => this.#child === child && this.#generation === generation;
    child.onmessage = (message) => current() && this.#fromChild(child, message);
    child.onexit = () => current() && this.#exited();
  }

  /** The process's InitializeResult, initializing it first in this generation (with the first client's parameters). */
  initialize(params?: InitializeRequest["params"]): Promise<InitializeResult> {
    this.#initParams ??= params;
    if (!this.#ready) {
      const ready = this.#handshake();
      this.#ready = ready;
      ready.catch(() => this.#ready === ready && (this.#ready = undefined));
    }
    return this.#ready;
  }

  join(peer: Peer): void {
    this.#peers.add(peer);
  }

  /** A client is gone: its calls are cancelled at the process, its pending answers refused. */
  leave(peer: Peer): void {
    this.#peers.delete(peer);
    for (const [id, entry] of this.#pending)
      if (entry.kind === "call" && entry.peer === peer) {
        this.#pending.delete(id);
        entry.release();
        this.#send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: "The client went away." } });
      }
    for (const [clientId, asked] of this.#asked)
      if (asked.peer === peer) {
        this.#asked.delete(clientId);
        this.#send(errorResponse(asked.childId, BRIDGE_ERRORS.internalError, "The client went away."));
      }
  }

  /** Whether nothing holds this link any more. */
  get unused(): boolean {
    return this.#peers.size === 0 && this.#pending.size === 0 && this.#child === undefined;
  }

  /** A client's request, relayed under the bridge's id; the answer (or an error when the process fails) reaches `peer`. */
  async call(peer: Peer, request: JSONRPCRequest): Promise<void> {
    try {
      await this.initialize();
    } catch (error) {
      return peer.deliver(errorResponse(request.id, BRIDGE_ERRORS.internalError, (error as Error).message), request.id);
    }
    const child = this.#child;
    if (!child) return peer.deliver(this.#gone(request.id), request.id);
    const id = ++this.#next;
    const meta = request.params?._meta;
    const token = meta?.progressToken;
    const params = token === undefined ? request.params : { ...request.params, _meta: { ...meta, progressToken: id } };
    this.#pending.set(id, { kind: "call", peer, id: request.id, token, release: child.hold() });
    child.send({ ...request, id, ...(params ? { params } : {}) }).catch(() => this.#settle(id, this.#gone(request.id)));
  }

  /** A client's notification: `initialized` is the bridge's own to send; `cancelled` names the bridge's id. */
  notify(peer: Peer, notification: JSONRPCNotification): void {
    if (notification.method === "notifications/initialized") return;
    if (notification.method === "notifications/cancelled") {
      const requestId = notification.params?.requestId as RequestId | undefined;
      for (const [id, entry] of this.#pending)
        if (entry.kind === "call" && entry.peer === peer && entry.id === requestId) {
          this.#pending.delete(id);
          entry.release();
          this.#send({ ...notification, params: { ...notification.params, requestId: id } });
        }
      return;
    }
    this.#send(notification);
  }

  /** A client's answer to a request of the process. */
  answer(peer: Peer, response: JSONRPCMessage & { id: RequestId }): void {
    const asked = this.#asked.get(String(response.id));
    if (!asked || asked.peer !== peer) return;
    this.#asked.delete(String(response.id));
    this.#send({ ...response, id: asked.childId });
  }

  async #handshake(): Promise<InitializeResult> {
    const child = this.#child;
    if (!child || !this.#initParams) throw new Error(`The stdio server ${this.server} is not running.`);
    const id = ++this.#next;
    const answered = new Promise<InitializeResult>((resolve, reject) => this.#pending.set(id, { kind: "initialize", resolve, reject }));
    const timer = setTimeout(() => this.#settle(id, errorResponse(id, BRIDGE_ERRORS.internalError, "no answer")), INITIALIZE_TIMEOUT_MS).unref();
    const release = child.hold();
    try {
      await child.send({ jsonrpc: "2.0", id, method: "initialize", params: this.#initParams });
      const result = await answered;
      await child.send({ jsonrpc: "2.0", method: "notifications/initialized" });
      return result;
    } catch {
      throw new Error(`The stdio server ${this.server} did not initialize.`);
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  #fromChild(child: StdioChild, message: JSONRPCMessage): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      if (typeof message.id === "number") this.#settle(message.id, message);
    } else if (isJSONRPCRequest(message)) this.#ask(child, message);
    else this.#notification(message);
  }

  /** An answer from the process: the bridge's handshake, or a client's call under its own id again. */
  #settle(id: number, message: JSONRPCMessage & { id?: RequestId }): void {
    const entry = this.#pending.get(id);
    if (!entry) return;
    this.#pending.delete(id);
    if (entry.kind === "initialize") {
      if ("result" in message) entry.resolve(message.result as InitializeResult);
      else entry.reject(new Error("initialize failed"));
      return;
    }
    entry.release();
    entry.peer.deliver({ ...message, id: entry.id }, entry.id);
  }

  #notification(message: JSONRPCNotification): void {
    const params = message.params ?? {};
    if (message.method === "notifications/progress") {
      const entry = this.#pending.get(Number(params.progressToken));
      if (entry?.kind === "call" && entry.token !== undefined) entry.peer.deliver({ ...message, params: { ...params, progressToken: entry.token } }, entry.id);
      return;
    }
    if (message.method === "notifications/cancelled") {
      for (const [clientId, asked] of this.#asked)
        if (asked.childId === params.requestId) {
          this.#asked.delete(clientId);
          asked.peer.deliver({ ...message, params: { ...params, requestId: clientId } });
        }
      return;
    }
    // list changes, resource updates, log messages: every session of this process that listens (all one owner's
    // unless shared); a shared process's log messages and resource updates may be about one user: for no session
    if (this.shared && !LIST_CHANGED.test(message.method)) return;
    for (const peer of this.#peers) if (peer.listening) peer.deliver(message);
  }

  /**
   * A request of the process to a client (sampling, elicitation, roots): to the client whose call is in
   * flight, on that call's stream, else to a session's GET stream. The process cannot say which call it
   * serves: with calls of several clients in flight the bridge does not guess and answers with an error.
   */
  #ask(child: StdioChild, request: JSONRPCRequest): void {
    const calls = [...this.#pending.values()].filter((entry): entry is Call => entry.kind === "call");
    const callers = new Set(calls.map((call) => call.peer));
    const call = calls.at(-1);
    const refuse = (why: string) => this.#refuse(child, request, why);
    // a shared process serves every user: a request of no call would reach whichever user listens
    if (this.shared && !call) return refuse(`The server is shared by several users: ${request.method} outside a call cannot be sent to any one of them.`);
    const peer = call ? call.peer : [...this.#peers].reverse().find((each) => each.listening);
    if (!peer && this.#peers.size > 0) {
      const timer = setTimeout(() => {
        const at = this.#parked.findIndex((parked) => parked.request === request);
        if (at >= 0 && this.#parked.splice(at, 1)) refuse(`No client of the gateway can answer ${request.method} now.`);
      }, LISTEN_WAIT_MS).unref();
      return void this.#parked.push({ request, timer });
    }
    if (!peer) return refuse(`No client of the gateway can answer ${request.method} now.`);
    if (callers.size > 1) return refuse(`Several clients have calls in flight: the gateway cannot tell which one ${request.method} is for.`);
    if (!peer.takesRequests) return refuse(`The client speaks MCP 2026-07-28: ${request.method} cannot reach it through the gateway's stdio bridge.`);
    this.#forward(peer, request, call?.id);
  }

  /** A session opened its GET stream: the requests of the process waiting for one go down it. */
  listening(peer: Peer): void {
    for (const { request, timer } of this.#parked.splice(0)) {
      clearTimeout(timer);
      this.#forward(peer, request);
    }
  }

  #forward(peer: Peer, request: JSONRPCRequest, relatedTo?: RequestId): void {
    const clientId = `gateway-${++this.#next}`;
    this.#asked.set(clientId, { peer, childId: request.id });
    peer.deliver({ ...request, id: clientId }, relatedTo);
  }

  #refuse(child: StdioChild, request: JSONRPCRequest, why: string): void {
    this.log.warn(`stdio ${this.server}: its ${request.method} request answered with an error: ${why}`);
    void child.send(errorResponse(request.id, BRIDGE_ERRORS.internalError, why)).catch(() => undefined);
  }

  #exited(): void {
    const gone = this.#gone(0);
    this.#child = undefined;
    this.#ready = undefined;
    const pending = [...this.#pending.entries()];
    this.#pending.clear();
    this.#asked.clear();
    for (const { timer } of this.#parked.splice(0)) clearTimeout(timer);
    const calls = pending.filter(([, entry]) => entry.kind === "call").length;
    if (calls) this.log.warn(`stdio ${this.server}: the process exited with ${calls} request(s) in flight, each answered with an error`);
    for (const [id, entry] of pending) {
      if (entry.kind === "initialize") entry.reject(new Error(`process ${id} exited`));
      else {
        entry.release();
        entry.peer.deliver({ ...gone, id: entry.id }, entry.id);
      }
    }
  }

  #gone(id: RequestId): JSONRPCMessage {
    return errorResponse(id, BRIDGE_ERRORS.internalError, `The stdio server ${this.server} exited.`);
  }

  #send(message: JSONRPCMessage): void {
    this.#child?.send(message).catch(() => undefined);
  }
}
