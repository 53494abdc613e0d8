import { ManualClock } from "../../src/clock.js";
import type { Gateway } from "../../src/gateway.js";
import type { Logger } from "../../src/log.js";
import { DEFAULT_APPS, startSimulator, type SimApp, type Simulator, type SimulatorOptions } from "../../src/simulator/index.js";
import { merged, type ServerEntry, type TestConfigOptions, type TestUser } from "./config.js";
import { simulatorServer, startTestGateway } from "./gateway.js";

export interface Stack {
  clock: ManualClock;
  simulator: Simulator;
  gateway: Gateway;
  app: SimApp;
  /** `<gateway>/mcp` */
  mcpUrl: string;
  close(): Promise<void>;
}

export interface StackOptions {
  mode?: SimApp["kind"];
  /** The gateway's options besides its upstream. */
  config?: Omit<Partial<TestConfigOptions>, "mcpServers">;
  /** Keys added to the upstream's entry; `oauth` is merged key by key. */
  server?: Partial<ServerEntry>;
  simulator?: SimulatorOptions;
  log?: Logger;
  /** Proxy /mcp to this endpoint instead, with the simulator's OAuth endpoints given explicitly (no discovery). */
  upstreamRs?: string;
  /** Gateway users instead of LOGIN. */
  users?: TestUser[];
  /** Start without a public URL, as a new user does: every loopback name works, localhost is canonical. */
  loopbackNames?: boolean;
}

/** The GitHub simulator and a gateway in front of it at `/mcp`, both on ephemeral loopback ports, one clock. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const clock = new ManualClock();
  const known = DEFAULT_APPS.find((a) => a.kind === (opts.mode ?? "oauth_app"))!;
  // the OAuth App registered with the callback the gateway names itself by (localhost without a public URL)
  const app = opts.loopbackNames ? { ...known, callbackUrls: ["http://localhost/upstream/callback"] } : known;
  const simulator = await startSimulator({ clock, ...(opts.loopbackNames ? { apps: [app] } : {}), ...opts.simulator });
  const upstream = simulatorServer(simulator, { app, ...(opts.upstreamRs ? { url: opts.upstreamRs, endpoints: true } : {}) });
  const gateway = await startTestGateway({
    mcpServers: { github: merged(upstream, opts.server) },
    atMcp: true,
    ...(opts.loopbackNames ? { publicUrl: null } : {}),
    ...(opts.users ? { users: opts.users } : {}),
    ...opts.config,
    clock,
    ...(opts.log ? { log: opts.log } : {}),
  });
  return {
    clock,
    simulator,
    gateway,
    app,
    mcpUrl: `${gateway.publicUrl}/mcp`,
    close: async () => {
      await gateway.close();
      await simulator.close();
    },
  };
}
