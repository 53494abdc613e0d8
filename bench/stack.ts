/**
 * The processes under test: the bench upstream, and the gateway exactly as the bin runs it, with an
 * access token minted offline the way /token mints one.
 */
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { systemClock } from "../src/clock.js";
import { deriveKeys, randomToken } from "../src/crypto.js";
import { MemoryStore } from "../src/store/memory.js";
import type { TokenContext } from "../src/grants/format.js";
import { issueTokens } from "../src/grants/issue.js";
import { firstLine, freePort, launch, stop } from "./processes.js";

/** Fixed, so a token minted here verifies in the gateway (40 characters). */
export const SECRET = "bench-secret-0123456789abcdefghijklmnopq";

export interface Upstream {
  child: ChildProcess;
  mcpUrl: string;
  controlUrl: string;
}

export async function startUpstream(): Promise<Upstream> {
  const child = launch(process.execPath, ["--import", "tsx", "bench/upstream.ts"], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await firstLine(child, /^\{.*\}$/m, 20_000, () => "the bench upstream did not start");
  const { mcp, control } = JSON.parse(line) as { mcp: number; control: number };
  return { child, mcpUrl: `http://127.0.0.1:${mcp}/mcp`, controlUrl: `http://127.0.0.1:${control}` };
}

/** bench/bare-proxy.mjs in front of the upstream: what a proxy on Node costs before the gateway adds anything. */
export async function startBareProxy(upstream: Upstream): Promise<{ child: ChildProcess; mcpUrl: string }> {
  const child = launch(process.execPath, ["bench/bare-proxy.mjs", upstream.mcpUrl], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await firstLine(child, /^\{.*\}$/m, 20_000, () => "the bare Node proxy did not start");
  return { child, mcpUrl: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/mcp` };
}

export interface GatewayUnderTest {
  child: ChildProcess;
  pid: number;
  publicUrl: string;
  mcpUrl: string;
  /** Where its stderr (the access log) goes. */
  stderrPath: string;
  /** `Bearer <token>` */
  authorization: string;
  tokenContext: TokenContext;
  profileDir?: string;
  stop(): Promise<void>;
}

/** `node dist/main.js`, as the bin runs it (`npm run bench` builds first), with nothing from the shell's MCP_GATEWAY_* variables. */
export interface GatewayOptions {
  profileDir?: string;
  nodeFlags?: string[];
  /** Extra gateway flags (`--workers 2`). */
  args?: string[];
  /** Another build's entry point, to compare two builds in one run (default dist/main.js). */
  entry?: string;
  /** The store flags (default `--store memory`; several processes need a shared one). */
  store?: string[];
}

/** A gateway's environment in the bench: none of the caller's gateway settings, the bench's secret and password. */
export const gatewayEnv = (): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MCP_GATEWAY_"))),
  MCP_GATEWAY_ENV_FILE: "/dev/null",
  MCP_GATEWAY_SECRET: SECRET,
  MCP_GATEWAY_PASSWORD: "bench-password",
});

export async function startGateway(upstream: Upstream, dir: string, opts: GatewayOptions): Promise<GatewayUnderTest> {
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const up = new URL(upstream.mcpUrl).origin;
  const env = gatewayEnv();
  const { profileDir } = opts;
  const node = [...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []), ...(opts.nodeFlags ?? []), opts.entry ?? "dist/main.js"];
  const args = [
    ...["--port", String(port), "--public-url", publicUrl, ...(opts.store ?? ["--store", "memory"])],
    ...["--upstream-rs", upstream.mcpUrl, "--upstream-client-id", "bench"],
    ...["--upstream-authorize-endpoint", `${up}/authorize`, "--upstream-token-endpoint", `${up}/token`],
    // the idle-streams section holds thousands of event streams on one token, from one address (docs/security.md HI9)
    ...["--max-streams-per-grant", "100000", "--max-streams-per-address", "1000000"],
    ...(opts.args ?? []),
  ];
  // The access log goes to a file: read only when the gateway fails, never a pipe the bench must drain.
  const logPath = join(dir, `gateway-${port}.stderr`);
  const log = openSync(logPath, "w");
  const child = launch(process.execPath, [...node, ...args], { env, stdio: ["ignore", "pipe", log] });
  closeSync(log);
  const tail = () => `gateway stderr (last 2 KB):\n${readFileSync(logPath, "utf8").slice(-2000)}`;
  await firstLine(child, /listening on http:\/\/\S+/, 60_000, tail);

  const tokenContext: TokenContext = {
    keys: deriveKeys(SECRET),
    store: new MemoryStore(),
    clock: systemClock,
    issuer: publicUrl,
    accessTokenTtl: 3600,
    refreshTokenTtl: 30 * 24 * 3600,
  };
  const grant = { grantId: randomToken(16), clientId: "bench-client", sub: "bench", scope: "", resource: `${publicUrl}/mcp` };
  const { access_token } = await issueTokens(tokenContext, grant, { access_token: "upstream-token" }, { refresh: false });
  const gateway: GatewayUnderTest = {
    child,
    pid: child.pid!,
    publicUrl,
    mcpUrl: `${publicUrl}/mcp`,
    stderrPath: logPath,
    authorization: `Bearer ${access_token}`,
    tokenContext,
    ...(profileDir ? { profileDir } : {}),
    stop: () => stop(child, "SIGTERM", 30_000),
  };
  await checkPost(gateway.mcpUrl, gateway.authorization, tail);
  return gateway;
}

export const TOOLS_CALL = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_me", arguments: {} } });

/** One `tools/call` must come back 200 with the upstream's result for its id, or the bench stops here. */
export async function checkPost(url: string, authorization: string | undefined, describe: () => string = () => ""): Promise<void> {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...(authorization ? { authorization } : {}), accept: "application/json, text/event-stream", "content-type": "application/json" },
    body: TOOLS_CALL,
  });
  const text = await response.text();
  if (response.status !== 200 || !text.includes('"id":1,"result"'))
    throw new Error(`POST ${url} answered ${response.status}, not 200 with a result: ${text.slice(0, 500)}\n${describe()}`);
}
