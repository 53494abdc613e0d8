import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_APPS, type Simulator } from "../../src/simulator/index.js";
import { LOGIN } from "./config.js";

/** Real processes a test starts and must stop: the gateway's own entry point, redis-server. */

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcessWithoutNullStreams>();
/** Kill whatever a test left running (afterEach/afterAll). */
export function killAll(): void {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  running.clear();
}
process.once("exit", killAll);

export function launch(command: string, args: readonly string[], env: Record<string, string | undefined>): Running {
  const child = spawn(command, [...args], { cwd: ROOT, env });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Stop a process (SIGTERM unless told) and wait for its end; one that already ended is left as it is. */
export async function stop(p: Running, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  await p.exited;
}

/** A process's parent pid and state letter from /proc (undefined once it is gone): the command name may hold spaces and parentheses. */
function procStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(ppid), state: state! };
  } catch {
    return undefined;
  }
}

/**
 * The pids whose parent is `pid` right now, from /proc; zombies (ended, not yet reaped) left out.
 * `command`: only those whose command line holds it (a tsx parent also has an esbuild child).
 */
export function childPids(pid: number, command = ""): number[] {
  const pids = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
  return pids.filter((p) => {
    const stat = procStat(p);
    return stat?.ppid === pid && stat.state !== "Z" && commandLine(p).includes(command);
  });
}

const commandLine = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
};

/** Whether `pid` is a running process (a zombie is not). */
export const isRunning = (pid: number): boolean => {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== "Z";
};

/** The Node 22 of the `node` devDependency: the conformance suite and the MCP Inspector need it, the gateway runs on ours. */
export const NODE22 = join(ROOT, "node_modules/node/bin/node");

/** `launch` on NODE22, failing with the fix when it is not installed. */
export function launchOnNode22(args: readonly string[], env: Record<string, string | undefined>): Running {
  if (!existsSync(NODE22)) throw new Error(`${NODE22} is missing: run \`npm ci\` (the \`node\` devDependency is the Node 22 it runs on)`);
  return launch(NODE22, args, env);
}

/** Wait until stdout matches, failing with what the process said if it exits or stalls first. */
export async function waitForStdout(p: Running, pattern: RegExp, ms = 15_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = p.stdout().match(pattern);
    if (match) return match;
    if (p.child.exitCode !== null || p.child.signalCode !== null || Date.now() > deadline)
      throw new Error(`no ${pattern} on stdout (exit ${p.child.exitCode ?? p.child.signalCode})\nstdout: ${p.stdout()}\nstderr: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port free right now on 127.0.0.1 (for processes that must come back on the same one). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), `${prefix}-`));

/** The environment of a child gateway: nothing from the developer's shell or .env leaks in. */
export const cleanEnv = (extra: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MCP_GATEWAY_"))),
  MCP_GATEWAY_ENV_FILE: "/dev/null",
  ...extra,
});

const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;

/** A gateway's flags: the simulator as upstream authorization server (no discovery), `upstreamRs` as the upstream MCP server. */
export const gatewayArgs = (simulator: Simulator, upstreamRs: string): string[] => [
  ...["--store", "memory", "--upstream-rs", upstreamRs, "--upstream-client-id", app.clientId, "--upstream-api-url", simulator.apiOrigin],
  ...["--upstream-authorize-endpoint", `${simulator.webOrigin}/login/oauth/authorize`],
  ...["--upstream-token-endpoint", `${simulator.webOrigin}/login/oauth/access_token`],
];

export const gatewayEnv = {
  MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0],
  MCP_GATEWAY_USERNAME: LOGIN.username,
  MCP_GATEWAY_PASSWORD: LOGIN.password,
};

export interface GatewayProcess extends Running {
  /** Where it listens, e.g. http://127.0.0.1:41234 */
  url: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** `mcp-oauth-gateway` as the bin runs it (the TypeScript entry through tsx), ready once its banner is out (within `ms`). */
export async function startGatewayProcess(args: readonly string[], env: Record<string, string | undefined>, ms = 20_000): Promise<GatewayProcess> {
  const p = launch(process.execPath, ["--import", "tsx", "src/main.ts", ...args], cleanEnv(env));
  const [, url] = await waitForStdout(p, /listening on (http:\/\/\S+)\n/, ms);
  return {
    ...p,
    url: url!,
    kill: (signal?: NodeJS.Signals) => stop(p, signal),
  };
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stop the server (SIGTERM: Redis flushes its append-only file and exits). */
  stop(): Promise<void>;
  /** Start it again on the same port and data directory. */
  start(): Promise<void>;
  /** Freeze it (SIGSTOP): connections stay open, nothing answers. `resume()` undoes it. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

/**
 * A real redis-server on a free port with its own directory and an append-only file, fsynced on
 * every write unless told otherwise, so nothing it acknowledged is lost across a stop and start.
 * Fails (never skips) when Redis is not installed.
 */
export async function startRedis(opts: { appendfsync?: "always" | "everysec" } = {}): Promise<RedisServer> {
  if (spawnSync("redis-server", ["--version"]).error)
    throw new Error("redis-server is not installed: run `apt-get install -y redis-server` (CI does this in .ci/run)");
  const port = await freePort();
  const dir = tempDir("gateway-redis");
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--appendonly",
    "yes",
    "--appendfsync",
    opts.appendfsync ?? "always",
    "--save",
    "",
    "--protected-mode",
    "no",
    "--loglevel",
    "warning",
  ];
  let server: Running | undefined;
  const start = async () => {
    server = launch("redis-server", args, process.env);
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(port))) {
      if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start: ${server.stdout()}${server.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const halt = async () => {
    if (server) await stop(server);
  };
  await start();
  const signal = (name: NodeJS.Signals) => () => void server?.child.kill(name);
  const close = async () => {
    signal("SIGCONT")();
    await halt();
  };
  return { url: `redis://127.0.0.1:${port}`, port, start, stop: halt, pause: signal("SIGSTOP"), resume: signal("SIGCONT"), close };
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
    socket.once("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}
