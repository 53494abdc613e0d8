import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { silentLogger, type Logger } from "../../src/log.js";
import { hashPassword } from "../../src/login/passwords.js";
import { DEFAULT_APPS, startSimulator, type SimApp, type Simulator, type SimulatorOptions } from "../../src/simulator/index.js";

export const LOGIN = { username: "alice", password: "correct horse battery staple" };

export interface Stack {
  clock: ManualClock;
  simulator: Simulator;
  gateway: Gateway;
  app: SimApp;
  /** `<gateway>/mcp` */
  mcpUrl: string;
  close(): Promise<void>;
}

/** The GitHub simulator and a gateway in front of it, both on ephemeral loopback ports, one clock. */
export async function startStack(
  opts: {
    mode?: SimApp["kind"];
    args?: string[];
    simulator?: SimulatorOptions;
    log?: Logger;
    /** Proxy /mcp to this endpoint instead, with the simulator's OAuth endpoints given explicitly (no discovery). */
    upstreamRs?: string;
    /** Gateway users from a users file instead of LOGIN from MCP_GATEWAY_USERNAME / MCP_GATEWAY_PASSWORD. */
    users?: { username: string; password: string }[];
    /** Start without --public-url, as a new user does: every loopback name works, localhost is canonical. */
    loopbackNames?: boolean;
  } = {},
): Promise<Stack> {
  const clock = new ManualClock();
  const known = DEFAULT_APPS.find((a) => a.kind === (opts.mode ?? "oauth_app"))!;
  // the OAuth App registered with the callback the gateway names itself by (localhost without --public-url)
  const app = opts.loopbackNames ? { ...known, callbackUrls: ["http://localhost/upstream/callback"] } : known;
  const simulator = await startSimulator({ clock, ...(opts.loopbackNames ? { apps: [app] } : {}), ...opts.simulator });
  const upstream = opts.upstreamRs
    ? [
        "--upstream-rs",
        opts.upstreamRs,
        "--upstream-authorize-endpoint",
        `${simulator.webOrigin}/login/oauth/authorize`,
        "--upstream-token-endpoint",
        `${simulator.webOrigin}/login/oauth/access_token`,
      ]
    : ["--upstream-rs", simulator.mcpUrl];
  upstream.push("--upstream-api-url", simulator.apiOrigin);
  const usersDir = opts.users ? mkdtempSync(join(tmpdir(), "gateway-users-")) : undefined;
  const login = usersDir
    ? { MCP_GATEWAY_USERS_FILE: await usersFile(usersDir, opts.users!) }
    : { MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password };
  const config = loadConfig(
    [
      "--port",
      "0",
      ...(opts.loopbackNames ? [] : ["--public-url", "http://127.0.0.1:0"]),
      "--store",
      "memory",
      ...upstream,
      "--upstream-client-id",
      app.clientId,
      ...(opts.args ?? []),
    ],
    { MCP_GATEWAY_ENV_FILE: "/dev/null", ...login, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0] },
  );
  const gateway = await startGateway(config, { clock, log: opts.log ?? silentLogger });
  return {
    clock,
    simulator,
    gateway,
    app,
    mcpUrl: `${gateway.publicUrl}/mcp`,
    close: async () => {
      await gateway.close();
      await simulator.close();
      if (usersDir) rmSync(usersDir, { recursive: true, force: true });
    },
  };
}

async function usersFile(dir: string, users: { username: string; password: string }[]): Promise<string> {
  const path = join(dir, "users");
  const lines = await Promise.all(users.map(async (u) => `${u.username}:${await hashPassword(u.password)}`));
  writeFileSync(path, `# gateway users\n${lines.join("\n")}\n`);
  return path;
}
