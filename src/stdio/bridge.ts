import type { IncomingMessage, ServerResponse } from "node:http";
import { isInitializeRequest, type RequestId } from "@modelcontextprotocol/sdk/types.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../log.js";
import type { StdioChild, StdioOwner, StdioProcesses } from "./child.js";
import { ChildLink } from "./link.js";
import { BridgeSession } from "./session.js";
import { isStateless, refusal, statelessCall } from "./stateless.js";

/** How many sessions the bridge keeps (docs/security.md ST1): each holds an SDK transport and a peer of its process. */
export interface SessionLimits {
  /** Sessions of one owner (client and user): a new one past this ends the owner's least recently used. */
  perOwner: number;
  /** Sessions of this server, every owner's: past this a new session gets 503. */
  total: number;
  /** A session no request has used for this long, with no GET stream open, is forgotten. */
  idleMs: number;
}
export const SESSION_LIMITS: SessionLimits = { perOwner: 32, total: 1024, idleMs: 3600 * 1000 };
/** Retry-After of the 503 past `total`: idle sessions go within the hour, ended ones at once. */
const FULL_RETRY_AFTER_SECONDS = 60;
/** JSON-RPC codes of the bridge's refusals, as the MCP SDK answers them. */
const CODES = { sessionNotFound: -32001, serverError: -32000 } as const;

/** An HTTP answer the bridge gives itself: a JSON-RPC error with its status. */
export interface BridgeRefusal {
  status: number;
  id: RequestId | null;
  code: number;
  message: string;
  headers?: Record<string, string>;
}

/**
 * The stdio server `server` at /mcp/<name>: streamable HTTP of both protocol eras onto the JSON-RPC of
 * its processes (one per owner, or one for all when `shared`; the pool decides). Sessions are the
 * bridge's own, bound to the client and user that opened them; processes come and go beneath them.
 */
export interface BridgeDeps {
  log: Pick<Logger, "warn">;
  clock: Clock;
  /** SESSION_LIMITS unless given (tests). */
  sessionLimits?: SessionLimits;
}

export class StdioBridge {
  readonly #links = new Map<string, ChildLink>();
  readonly #sessions = new Map<string, BridgeSession>();

  constructor(
    readonly server: string,
    private readonly processes: StdioProcesses,
    private readonly deps: BridgeDeps,
  ) {}

  /** Sessions open now, and processes linked (tests). */
  get size(): { sessions: number; links: number } {
    return { sessions: this.#sessions.size, links: this.#links.size };
  }

  /**
   * One request of an authenticated caller, its body parsed (POST). Returns the refusal to send when the
   * bridge answers without the process: an unknown session, a process the pool refused, a bad request.
   */
  async handle(req: IncomingMessage, res: ServerResponse, caller: StdioOwner, body: unknown): Promise<BridgeRefusal | undefined> {
    const id = requestIdOf(body);
    const sent = req.headers["mcp-session-id"];
    if (sent !== undefined) {
      const session = this.#sessions.get(Array.isArray(sent) ? sent.join(", ") : sent);
      // MCP transports §Session Management: a session that is not the caller's is answered as one that does not exist
      if (!session || session.owner !== ownerKey(caller)) return { status: 404, id, code: CODES.sessionNotFound, message: "Session not found" };
      if (req.method !== "DELETE") {
        const child = await this.#acquire(caller);
        if ("status" in child) return { ...child, id };
        session.link.attach(child);
        res.once("close", child.hold());
      }
      return void (await session.handle(req, res, body));
    }
    if (req.method === "POST" && isInitializeRequest(body)) return this.#open(req, res, caller, body);
    if (req.method === "POST" && isStateless(body, headerOf(req, "mcp-protocol-version"))) {
      const refused = refusal(body, req.headers);
      if (refused) return { ...refused, id };
      const link = await this.#link(res, caller);
      if ("status" in link) return { ...link, id };
      return void (await statelessCall(link, req, res, body as never));
    }
    const message =
      req.method === "POST" ? "Bad Request: initialize first, or send a 2026-07-28 request with _meta." : "Bad Request: Mcp-Session-Id header is required";
    return { status: 400, id, code: CODES.serverError, message };
  }

  /** Forget every session (shutdown; the pool ends the processes). */
  async close(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(sessions.map((session) => session.close()));
  }

  async #open(req: IncomingMessage, res: ServerResponse, caller: StdioOwner, body: unknown): Promise<BridgeRefusal | undefined> {
    this.#forgetIdle();
    const full = this.#makeRoom(ownerKey(caller));
    if (full) return { ...full, id: requestIdOf(body) };
    const link = await this.#link(res, caller);
    if ("status" in link) return { ...link, id: requestIdOf(body) };
    const session = new BridgeSession(ownerKey(caller), link, this.deps.clock, {
      opened: (sessionId, opened) => this.#sessions.set(sessionId, opened),
      closed: (sessionId) => this.#sessions.delete(sessionId),
    });
    await session.handle(req, res, body);
    return undefined;
  }

  /** The link to the caller's process, the process started (or restarted) by the pool when none runs. */
  async #link(res: ServerResponse, caller: StdioOwner): Promise<ChildLink | Omit<BridgeRefusal, "id">> {
    const child = await this.#acquire(caller);
    if ("status" in child) return child;
    // the process is in use while an exchange is open (a GET stream for as long as it stays open)
    res.once("close", child.hold());
    const key = this.processes.keyOf(this.server, caller);
    let link = this.#links.get(key);
    if (!link) this.#links.set(key, (link = new ChildLink(this.server, this.deps.log, this.processes.isShared(this.server))));
    link.attach(child);
    return link;
  }

  async #acquire(caller: StdioOwner): Promise<StdioChild | Omit<BridgeRefusal, "id">> {
    const acquired = await this.processes.acquire(this.server, caller);
    if ("child" in acquired) return acquired.child;
    return {
      status: 503,
      code: CODES.serverError,
      message: `The stdio server ${this.server} cannot start a process now: ${acquired.refused}`,
      headers: { "retry-after": String(acquired.retryAfterSeconds) },
    };
  }

  get #limits(): SessionLimits {
    return this.deps.sessionLimits ?? SESSION_LIMITS;
  }

  /** Room for one more session of `owner`: its least recently used ended past `perOwner`; a refusal past `total`. */
  #makeRoom(owner: string): Omit<BridgeRefusal, "id"> | undefined {
    const own = [...this.#sessions].filter(([, session]) => session.owner === owner).sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [id, session] of own.slice(0, Math.max(0, own.length - this.#limits.perOwner + 1))) {
      this.#sessions.delete(id);
      void session.close();
    }
    if (this.#sessions.size < this.#limits.total) return undefined;
    this.deps.log.warn(`stdio ${this.server}: ${this.#sessions.size} sessions open, the most it keeps: a new one refused (503)`);
    const message = `The stdio server ${this.server} has as many sessions open as it keeps: try again later.`;
    return { status: 503, code: CODES.serverError, message, headers: { "retry-after": String(FULL_RETRY_AFTER_SECONDS) } };
  }

  /** Sessions unused too long, and links with no session, no request and no process left. */
  #forgetIdle(): void {
    const before = this.deps.clock.now() - this.#limits.idleMs;
    for (const [id, session] of this.#sessions)
      if (session.lastUsed < before && !session.listening) {
        this.#sessions.delete(id);
        void session.close();
      }
    for (const [key, link] of this.#links) if (link.unused) this.#links.delete(key);
  }
}

/** Sessions belong to the grant's client and user (as src/rs/sessions.ts binds upstream sessions). */
const ownerKey = (caller: StdioOwner): string => `${caller.clientId}\n${caller.user}`;

const headerOf = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

function requestIdOf(body: unknown): RequestId | null {
  const id = (body as { id?: unknown } | null | undefined)?.id;
  return typeof id === "string" || typeof id === "number" ? id : null;
}
