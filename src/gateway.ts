import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createApp } from "./app.js";
import { systemClock, type Clock } from "./clock.js";
import type { Config } from "./config/types.js";
import { isSiteLocalHost } from "./hosts.js";
import { loadKeys, type KeySource } from "./crypto.js";
import { RevocationView } from "./grants/revocations.js";
import { createLogger, type Logger } from "./log.js";
import { Relays } from "./rs/relays.js";
import { openStore } from "./store/open.js";
import type { Store } from "./store/store.js";
import { Mounts, type MountDeps } from "./upstream/mounts.js";
import { PublicOrigins } from "./origins.js";
import { listenAll } from "./listeners.js";
import { createDispatcher, oauthFetch } from "./upstream/http.js";
import type { McpPolicy } from "./rs/policy.js";
import type { StdioProcesses } from "./stdio/child.js";
import { StdioPool, type StdioPoolDeps } from "./stdio/pool.js";

export interface Gateway {
  /** Where the server listens, e.g. http://127.0.0.1:8002 */
  listenUrl: string;
  /** The public URL in effect (with the real port when port 0 was asked for). */
  publicUrl: string;
  store: Store;
  /** The upstreams served, each at its own path. */
  mounts: Mounts;
  /** Where the master secret came from. */
  keySource: KeySource;
  /** The local (stdio) servers' processes. */
  stdio: StdioProcesses;
  /**
   * Stop: no new connections; event streams waiting for events end now; requests in flight get
   * `graceMs` to finish (0, the default: cut at once). Then everything closes.
   */
  close(graceMs?: number): Promise<void>;
}

export interface GatewayOptions {
  clock?: Clock;
  store?: Store;
  log?: Logger;
  /** Node's `server.requestTimeout` (tests shorten it). */
  requestTimeoutMs?: number;
  /** Which /mcp calls are relayed (src/rs/policy.ts), for a program that embeds the gateway; absent: every authenticated one. */
  policy?: McpPolicy;
}

/**
 * Whether upstream authorization servers can fetch the gateway's metadata document: an https URL
 * (CIMD draft §3) that is not inside a site, since their SSRF guards refuse those. A test setup
 * that lets its own fetches reach private addresses (`--allow-private-fetch`) assumes theirs do too.
 */
function offersClientMetadata(config: Pick<Config, "publicUrl" | "allowPrivateFetch">): boolean {
  const url = new URL(config.publicUrl);
  return url.protocol === "https:" && (config.allowPrivateFetch || !isSiteLocalHost(url.hostname));
}

/**
 * Wire the parts together and listen: the only place with side effects besides main. A public URL
 * with port 0 (tests, the demo) takes the port the server was given.
 */
export async function startGateway(given: Readonly<Config>, options: GatewayOptions = {}): Promise<Gateway> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger();
  const store = options.store ?? (await openStore(given.store, { clock, log }));
  const ownStore = options.store === undefined;
  const requestTimeout = options.requestTimeoutMs ?? 60_000;
  const newServer = (): Server => createServer({ connectionsCheckingInterval: Math.min(30_000, Math.max(100, requestTimeout / 4)) });
  let servers: Server[] = [];
  const { pool: stdio, close: closeStdio } = startStdio(given, { log, clock });
  let revocations: RevocationView | undefined;
  try {
    const { keys, source: keySource } = await loadKeys(given, store);
    // before listening: from the first request on, /mcp checks revocation against it
    revocations = await RevocationView.start(store, { clock, log });
    const listening = await listenAll(given, newServer, log);
    const { host, port } = listening;
    servers = listening.servers;
    const config = withPort(given, port);

    const dispatcher = createDispatcher();
    const relays = relaysFollowing(revocations, config.proxy.sseHeartbeat * 1000, log);
    const mounts = mountsOf(config, listening.loopbackNames, { store, keys, clock, dispatcher, log });
    const app = createApp({
      config,
      store,
      keys,
      mounts,
      dispatcher,
      relays,
      stdio,
      revocations,
      clock,
      log,
      ...(options.policy ? { policy: options.policy } : {}),
    });
    for (const each of servers) serve(each, app, requestTimeout);
    return {
      listenUrl: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
      publicUrl: config.publicUrl,
      store,
      mounts,
      keySource,
      stdio,
      close: async (graceMs = 0) => {
        const closed = Promise.all(servers.map((each) => new Promise<void>((resolve) => each.close(() => resolve()))));
        await relays.drain(graceMs);
        for (const each of servers) each.closeAllConnections();
        await Promise.all([closed, closeStdio()]);
        await dispatcher.close();
        await revocations?.close();
        if (ownStore) await store.close();
      },
    };
  } catch (error) {
    for (const each of servers) each.close();
    await closeStdio();
    await revocations?.close();
    if (ownStore) await store.close();
    throw error;
  }
}

/** The /mcp exchange registry, whose GET event streams of a revoked grant end as the view learns of it (docs/security.md RU5). */
function relaysFollowing(view: RevocationView, heartbeatMs: number, log: Logger): Relays {
  const relays = new Relays(heartbeatMs, (grantId) => view.revoked(grantId) === true);
  view.onRevoked((grantId) => {
    const ended = relays.endGrant(grantId);
    if (ended > 0) log.info(`revocations: ended ${ended} open /mcp event stream${ended === 1 ? "" : "s"} of a revoked grant`);
  });
  return relays;
}

function serve(server: Server, app: (req: IncomingMessage, res: ServerResponse) => void, requestTimeout: number): void {
  server.on("request", app);
  // Both cover receiving the request only: an event stream in the response may stay open for hours
  server.headersTimeout = Math.min(30_000, requestTimeout); // Node widens requestTimeout to headersTimeout when shorter
  server.requestTimeout = requestTimeout;
}

/** The stdio servers' processes; an exit without close() (a second signal, a crash) must not leave one behind. */
function startStdio(config: Readonly<Config>, deps: StdioPoolDeps): { pool: StdioPool; close: () => Promise<void> } {
  const pool = new StdioPool(config.upstreams, config.stdio, deps);
  const kill = () => pool.kill();
  process.once("exit", kill);
  return {
    pool,
    close: async () => {
      await pool.close();
      process.off("exit", kill);
    },
  };
}

/** A public URL with port 0 (tests, the demo) takes the port the server was given. */
function withPort(given: Readonly<Config>, port: number): Readonly<Config> {
  const publicUrl = new URL(given.publicUrl);
  if (publicUrl.port === "0") publicUrl.port = String(port);
  return { ...given, publicUrl: publicUrl.origin };
}

function mountsOf(
  config: Readonly<Config>,
  loopbackNames: readonly string[],
  deps: Pick<MountDeps, "store" | "keys" | "clock" | "log"> & { dispatcher: ReturnType<typeof createDispatcher> },
): Mounts {
  const { dispatcher, ...rest } = deps;
  return new Mounts(config.upstreams, new PublicOrigins(config.publicUrl, config.loopbackNames ? loopbackNames : []), {
    ...rest,
    fetch: oauthFetch(dispatcher),
    offersClientMetadata: offersClientMetadata(config),
  });
}
