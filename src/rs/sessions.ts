import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { storeKey, type Store } from "../store/store.js";

const owners = new WeakMap<object, string>();

/** Who an upstream MCP session belongs to (a hash of the grant's client and user), and when the binding lapses (epoch seconds). */
interface Binding {
  owner: string;
  exp: number;
}

/**
 * docs/security.md MU9: every upstream `Mcp-Session-Id` is bound to the client and user whose
 * request the upstream issued it to, since an upstream reached with one credential for everyone
 * cannot tell its users apart. Bindings live in the store (every instance sees them) and in a
 * bounded local cache: a binding never changes once written (a DELETE drops it; another instance
 * that cached it still answers its owner only), so a session in use costs no store read.
 *
 * The owner is the grant's client and user rather than the grant itself: a client that signs in
 * again (a step-up, a lost refresh token) keeps its session, as the MCP SDK client does.
 */
export class McpSessions {
  private readonly cache = new Map<string, Binding>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** How long a binding outlives its last write: long enough for any real session (the refresh token's TTL). */
    private readonly ttlSeconds: number,
    private readonly max = 10_000,
  ) {}

  /** The owner of a session opened by this grant's client and user (one hash per verified token: its claims object is reused). */
  static owner(claims: { client_id: string; sub: string }): string {
    let owner = owners.get(claims);
    if (owner === undefined) owners.set(claims, (owner = sha256(`${claims.client_id}\n${claims.sub}`)));
    return owner;
  }

  /** Whether `sessionId` at `resource` was issued to `owner`: false for another's and for one the gateway never saw. */
  async belongsTo(resource: string, sessionId: string, owner: string): Promise<boolean> {
    const id = `${resource}\n${sessionId}`;
    const binding = this.cached(id) ?? (await this.load(id));
    return binding?.owner === owner;
  }

  /** Bind a session the upstream just issued; false when it is already another owner's (first writer wins). */
  async bind(resource: string, sessionId: string, owner: string): Promise<boolean> {
    const id = `${resource}\n${sessionId}`;
    const known = this.cached(id);
    if (known) return known.owner === owner;
    const binding: Binding = { owner, exp: nowSeconds(this.clock) + this.ttlSeconds };
    if (!(await this.store.add(sessionKey(id), binding, this.ttlSeconds))) return (await this.load(id))?.owner === owner;
    this.remember(id, binding);
    return true;
  }

  /**
   * The store's part in an upstream's answer, written before the client sees it: a session id the
   * upstream issued is bound to the caller (SessionOfAnother when it is already another's), one the
   * caller ended with DELETE is forgotten; undefined when there is nothing to write.
   */
  record(resource: string, answer: { method?: string; sent?: string; owner: string; status: number; issued?: string | string[] }): Promise<void> | undefined {
    const { method, sent, owner, status, issued } = answer;
    if (typeof issued === "string" && issued !== sent)
      return this.bind(resource, issued, owner).then((bound) => {
        if (!bound) throw new SessionOfAnother();
      });
    if (method === "DELETE" && sent !== undefined && status >= 200 && status < 300) return this.unbind(resource, sent);
    return undefined;
  }

  /** MCP transports §Session Management: the client ended the session (DELETE); its id is unknown from now on. */
  async unbind(resource: string, sessionId: string): Promise<void> {
    const id = `${resource}\n${sessionId}`;
    this.cache.delete(id);
    await this.store.delete(sessionKey(id));
  }

  /** By `resource\nsessionId`: a cache hit costs no hash. */
  private cached(id: string): Binding | undefined {
    const binding = this.cache.get(id);
    if (binding && binding.exp <= nowSeconds(this.clock)) return void this.cache.delete(id);
    return binding;
  }

  private async load(id: string): Promise<Binding | undefined> {
    const binding = await this.store.get<Binding>(sessionKey(id));
    return binding && this.remember(id, binding);
  }

  private remember(id: string, binding: Binding): Binding {
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, binding);
    return binding;
  }
}

/** The upstream answered one caller with a session id bound to another: never handed on. */
export class SessionOfAnother extends Error {
  override name = "SessionOfAnother";
  override message = "The upstream MCP server answered with a session that belongs to another user.";
}

/** The session id is the upstream's bearer for the session: stored only as a hash, scoped to its resource. */
const sessionKey = (id: string): string => storeKey.mcpSession(sha256(id));
