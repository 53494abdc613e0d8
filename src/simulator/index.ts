import { systemClock } from "../clock.js";
import { apiHandler } from "./api/routes.js";
import type { SimContext } from "./context.js";
import { listenOrigin, type Handler, type OriginName, type OriginServer, type RecordedRequest } from "./http.js";
import { mcpHandler } from "./mcp/routes.js";
import { DEFAULT_APPS, DEFAULT_QUIRKS, DEFAULT_USERS, type SimApp, type SimulatorOptions, type SimUser } from "./options.js";
import { GrantStore } from "./store.js";
import { webHandler } from "./web/routes.js";

export { DEFAULT_APPS } from "./options.js";
export type { SimApp, SimEmail, SimOrgMembership, SimUser, SimulatorOptions } from "./options.js";
export type { RecordedRequest } from "./http.js";

export interface Simulator {
  webOrigin: string;
  apiOrigin: string;
  mcpOrigin: string;
  /** `${mcpOrigin}/mcp/`, what the gateway is given as --upstream-rs. */
  mcpUrl: string;
  apps: SimApp[];
  users: SimUser[];
  /** Every request any origin received, in order, recorded before handling. */
  requests: RecordedRequest[];
  /** Every upstream token ever minted. */
  issuedTokens(): { access: string[]; refresh: string[] };
  /** Mutable at run time. */
  faults: NonNullable<SimulatorOptions["faults"]>;
  /** As DELETE /applications/{client_id}/grant; without userId, for every user. */
  revokeGrant(clientId: string, userId?: number): void;
  /** Who is signed in at github.com from now on (`browserUser` at start). */
  signIn(userId: number): void;
  close(): Promise<void>;
}

/** An offline github.com + api.github.com + api.githubcopilot.com, one HTTP server per origin. */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const clock = opts.clock ?? systemClock;
  const apps = opts.apps ?? DEFAULT_APPS.map((a) => ({ ...a }));
  const users = opts.users ?? DEFAULT_USERS.map((u) => ({ ...u }));
  const browserUser = opts.browserUser === undefined ? users[0] : users.find((u) => u.id === opts.browserUser);
  if (!browserUser) throw new Error(`simulator: needs at least one user, and browserUser (${String(opts.browserUser)}) must be one of them`);
  const quirks = { ...DEFAULT_QUIRKS, ...opts.quirks };
  const faults = { tokenEndpoint5xx: 0, tokenEndpointReset: 0, latencyMs: 0, ...opts.faults };
  const requests: RecordedRequest[] = [];
  const handlers: Partial<Record<OriginName, Handler>> = {};
  const host = opts.host ?? "127.0.0.1";

  const servers: OriginServer[] = [];
  const listen = async (name: OriginName): Promise<string> => {
    const server = await listenOrigin({
      name,
      host,
      port: opts.ports?.[name] ?? 0,
      handler: () => handlers[name] as Handler,
      record: (r) => requests.push(r),
      now: () => clock.now(),
      latencyMs: () => faults.latencyMs ?? 0,
    });
    servers.push(server);
    return server.origin;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close()));
  };

  let origins: SimContext["origins"];
  try {
    origins = { web: await listen("web"), api: await listen("api"), mcp: await listen("mcp") };
  } catch (err) {
    await closeAll();
    throw err;
  }

  const store = new GrantStore(clock, quirks.longTokens);
  const ctx: SimContext = { clock, origins, apps, users, browserUser, consent: opts.consent ?? "auto-approve", quirks, faults, store };
  handlers.web = webHandler(ctx);
  handlers.api = apiHandler(ctx);
  handlers.mcp = mcpHandler(ctx);

  return {
    webOrigin: origins.web,
    apiOrigin: origins.api,
    mcpOrigin: origins.mcp,
    mcpUrl: `${origins.mcp}/mcp/`,
    apps,
    users,
    requests,
    issuedTokens: () => ({ access: [...store.issued.access], refresh: [...store.issued.refresh] }),
    faults,
    revokeGrant: (clientId, userId) => store.revokeGrant(clientId, userId),
    signIn: (userId) => {
      const user = users.find((u) => u.id === userId);
      if (!user) throw new Error(`simulator: no user ${userId}`);
      ctx.browserUser = user;
    },
    close: closeAll,
  };
}
