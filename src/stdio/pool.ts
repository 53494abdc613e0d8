import type { Clock } from "../clock.js";
import type { StdioConfig, StdioServerConfig, UpstreamConfig } from "../config/types.js";
import type { Logger } from "../log.js";
import { Backoff } from "./backoff.js";
import type { Acquired, StdioOwner, StdioProcesses } from "./child.js";
import { makePrivateDir, processDir } from "./dirs.js";
import { childEnvironment, render } from "./env.js";
import { StdioProcess, type Ended } from "./process.js";

export interface StdioPoolDeps {
  log: Logger;
  clock: Clock;
}

/** One process key's process: starting (`pending`), then running (`child`). */
interface Slot {
  server: string;
  /** The user it counts toward; undefined for a shared process. */
  user: string | undefined;
  pending: Promise<Acquired>;
  child?: StdioProcess;
}

/** Seconds a refused caller is told to wait for a free process: one may end at its idle timeout. */
const CAP_RETRY_SECONDS = 60;

/**
 * The processes of the local (stdio) servers (docs/upstreams.md): one per grant's user and client, or one
 * per server when `shared`; started on first use, ended when idle and at shutdown, restarted with back-off,
 * capped in all and per user.
 */
export class StdioPool implements StdioProcesses {
  readonly #servers: ReadonlyMap<string, StdioServerConfig>;
  readonly #options: StdioConfig;
  readonly #deps: StdioPoolDeps;
  readonly #slots = new Map<string, Slot>();
  /** Processes being ended (stdin closed, signals on the way): still running and counted, but given to no one. */
  readonly #ending = new Set<Slot>();
  readonly #backoff: Backoff;
  #spawns = 0;
  #closed = false;

  constructor(upstreams: readonly UpstreamConfig[], options: StdioConfig, deps: StdioPoolDeps) {
    this.#servers = new Map(upstreams.flatMap((u) => (u.stdio ? [[u.name, u.stdio] as const] : [])));
    this.#options = options;
    this.#deps = deps;
    this.#backoff = new Backoff(deps.clock);
  }

  keyOf(server: string, owner: StdioOwner): string {
    return this.#servers.get(server)?.shared ? server : JSON.stringify([server, owner.user, owner.clientId]);
  }

  isShared(server: string): boolean {
    return this.#servers.get(server)?.shared === true;
  }

  get running(): number {
    return this.#slots.size + this.#ending.size;
  }

  acquire(server: string, owner: StdioOwner): Promise<Acquired> {
    const config = this.#servers.get(server);
    if (!config) return Promise.reject(new Error(`no stdio server named ${server}`));
    if (this.#closed) return Promise.resolve({ refused: "The gateway is shutting down.", retryAfterSeconds: 5 });
    const key = this.keyOf(server, owner);
    const slot = this.#slots.get(key);
    if (slot) return slot.pending;
    const refused = this.#refusal(server, key, config.shared ? undefined : owner.user);
    if (refused) return Promise.resolve(refused);
    const fresh: Slot = { server, user: config.shared ? undefined : owner.user, pending: Promise.resolve({ refused: "", retryAfterSeconds: 0 }) };
    fresh.pending = this.#start(key, fresh, config, owner);
    this.#slots.set(key, fresh);
    return fresh.pending;
  }

  /** Ends every process and waits for them; no process starts afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const ending = [...this.#slots.values(), ...this.#ending].map(async (slot) => {
      await slot.pending;
      await slot.child?.end("shutdown");
    });
    await Promise.all(ending);
  }

  /** SIGKILL to every process at once, for a gateway that exits without close(): none outlives it. */
  kill(): void {
    for (const slot of [...this.#slots.values(), ...this.#ending]) slot.child?.kill();
  }

  /** Why this key cannot start a process now: back-off after quick deaths, or a cap. */
  #refusal(server: string, key: string, user: string | undefined): Acquired | undefined {
    const waitMs = this.#backoff.waitMs(key);
    if (waitMs > 0)
      return {
        refused: `The stdio server ${server} keeps exiting right after it starts; it is started again in a moment.`,
        retryAfterSeconds: Math.ceil(waitMs / 1000),
      };
    const retryAfterSeconds = Math.min(CAP_RETRY_SECONDS, this.#options.idleTimeout);
    if (this.running >= this.#options.maxProcesses)
      return { refused: `The gateway runs as many stdio server processes as it may (${this.#options.maxProcesses}); try again later.`, retryAfterSeconds };
    if (user !== undefined && [...this.#slots.values(), ...this.#ending].filter((s) => s.user === user).length >= this.#options.maxPerUser)
      return { refused: `You have as many stdio server processes as one user may (${this.#options.maxPerUser}); try again later.`, retryAfterSeconds };
    return undefined;
  }

  async #start(key: string, slot: Slot, config: StdioServerConfig, owner: StdioOwner): Promise<Acquired> {
    const { log } = this.#deps;
    const generation = ++this.#spawns;
    try {
      const dir = processDir(this.#options.dir, slot.server, slot.user);
      await makePrivateDir(dir);
      const child = new StdioProcess(
        {
          server: slot.server,
          command: config.command,
          args: config.args.map((arg) => render(arg, dir)),
          env: childEnvironment(config, this.#options.environment, owner, dir),
          cwd: config.cwd ? render(config.cwd, dir) : dir,
        },
        generation,
        {
          log,
          clock: this.#deps.clock,
          idleTimeoutMs: this.#options.idleTimeout * 1000,
          ending: () => this.#retire(key, slot),
          ended: (ended) => this.#ended(key, slot, ended),
        },
      );
      await child.start();
      slot.child = child;
      const whose = slot.user === undefined ? "every user (shared)" : `user ${owner.user}, client ${owner.clientId}`;
      log.info(`stdio ${slot.server}: started pid ${child.pid ?? "?"} for ${whose}`);
      if (this.#closed) void child.end("shutdown");
      return { child };
    } catch (error) {
      if (this.#slots.get(key) === slot) this.#slots.delete(key);
      this.#backoff.died(key, 0);
      log.error(`stdio ${slot.server}: cannot start ${config.command} (check "command" and "cwd")`, error);
      return { refused: `The stdio server ${slot.server} cannot be started.`, retryAfterSeconds: Math.max(1, Math.ceil(this.#backoff.waitMs(key) / 1000)) };
    }
  }

  /** A process being ended gives its key up at once: the next caller gets a new process, not one about to exit. */
  #retire(key: string, slot: Slot): void {
    if (this.#slots.get(key) !== slot) return;
    this.#slots.delete(key);
    this.#ending.add(slot);
  }

  #ended(key: string, slot: Slot, { reason, ranMs }: Ended): void {
    if (this.#slots.get(key) === slot) this.#slots.delete(key);
    this.#ending.delete(slot);
    if (reason === "idle" || reason === "shutdown") this.#backoff.ended(key, ranMs);
    else this.#backoff.died(key, ranMs);
  }
}
