import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestBrowser } from "./browser.js";
import { discover, registered, signInAndRedeem } from "./oauth-walk.js";
import { freePort, launch, launchOnNode22, ROOT, startGatewayProcess, stop, tempDir, waitForStdout, type GatewayProcess, type Running } from "./processes.js";
import { LOGIN } from "./config.js";

/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance), run as its CLI with the
 * Node 22 of the `node` devDependency, and what it needs around it: server-everything as an upstream
 * and a real gateway process in front of it.
 */

export const SUITE = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const support = (file: string) => join(ROOT, "test/support", file);
/** The preload that gives the suite a bearer token for the gateway (see the file). */
export const BEARER_PRELOAD = support("conformance-bearer.mjs");

export type Status = "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO";

/** One check as the suite saves it in `<output-dir>/<mode>-<scenario>-<timestamp>/checks.json`. */
export interface Check {
  scenario: string;
  id: string;
  status: Status;
  errorMessage?: string;
}

export interface SuiteRun {
  code: number | null;
  /** stdout and stderr. */
  output: string;
  checks: Check[];
}

/**
 * Run `conformance <args…> -o <dir>` to its end and read every check it saved. `whileRunning` gets
 * the process while it runs (the authorization scenarios wait for a browser); `env` is added to the
 * suite's environment (the bearer preload through the gateway).
 */
export async function runSuite(
  args: readonly string[],
  opts: { env?: Record<string, string>; preload?: string; whileRunning?: (suite: Running) => Promise<void> } = {},
): Promise<SuiteRun> {
  const dir = tempDir("conformance");
  const preload = opts.preload ? ["--import", opts.preload] : [];
  const suite = launchOnNode22([...preload, SUITE, ...args, "-o", dir], { ...process.env, ...opts.env });
  const driven = opts.whileRunning?.(suite).catch((error: unknown) => {
    suite.child.kill("SIGKILL");
    throw error;
  });
  const [{ code }] = await Promise.all([suite.exited, driven]);
  return { code, output: suite.stdout() + suite.stderr(), checks: readChecks(dir) };
}

/** Saved as `<mode>-<scenario>-<ISO time with dashes>/`; in the order the scenarios ran. */
const RUN_DIR = /^(?:authorization-server|server)-(.+)-(\d{4}-\d\d-\d\dT[\d-]+Z)$/;

function readChecks(dir: string): Check[] {
  const runs = readdirSync(dir).map((name) => {
    const [, scenario, time] = RUN_DIR.exec(name) ?? [];
    if (!scenario || !time) throw new Error(`unexpected entry in the suite's output directory: ${name}`);
    return { name, scenario, time };
  });
  return runs
    .sort((a, b) => a.time.localeCompare(b.time))
    .flatMap(({ name, scenario }) => {
      const file = join(dir, name, "checks.json");
      // A scenario that threw saves no checks; the suite counts it as one failure named after it.
      if (!existsSync(file))
        return [{ scenario, id: scenario, status: "FAILURE" as const, errorMessage: "Failed to run scenario (the suite's output says why)" }];
      const saved = JSON.parse(readFileSync(file, "utf8")) as Omit<Check, "scenario">[];
      return saved.map(({ id, status, errorMessage }) => ({ scenario, id, status, ...(errorMessage ? { errorMessage } : {}) }));
    });
}

/** `scenario › check-id`: ids repeat across scenarios (wire-schema-valid), so a check is named by both. */
export const checkName = (c: Check): string => `${c.scenario} › ${c.id}`;

/** How many checks ended in each status. */
export function tally(checks: readonly Check[]): Record<Status, number> {
  const counts: Record<Status, number> = { SUCCESS: 0, FAILURE: 0, WARNING: 0, SKIPPED: 0, INFO: 0 };
  for (const c of checks) counts[c.status]++;
  return counts;
}

const SEVERITY: readonly Status[] = ["FAILURE", "WARNING", "SKIPPED", "INFO", "SUCCESS"];

/** The checks that passed: a name repeated within a scenario (a loop, a retry) passes only if every occurrence does. */
export function passing(checks: readonly Check[]): Set<string> {
  const verdict = new Map<string, Status>();
  for (const c of checks) {
    const earlier = verdict.get(checkName(c));
    if (earlier === undefined || SEVERITY.indexOf(c.status) < SEVERITY.indexOf(earlier)) verdict.set(checkName(c), c.status);
  }
  return new Set([...verdict].filter(([, status]) => status === "SUCCESS").map(([name]) => name));
}

export interface Service {
  url: string;
  stop(): Promise<void>;
}

/** @modelcontextprotocol/server-everything in Streamable HTTP mode on 127.0.0.1 (its own Node 20 process). */
export async function startEverything(): Promise<Service> {
  const port = await freePort();
  const p = launch(process.execPath, ["--import", support("listen-loopback.mjs"), EVERYTHING, "streamableHttp"], { ...process.env, PORT: String(port) });
  const ready = /listening on port/;
  const deadline = Date.now() + 15_000;
  while (!ready.test(p.stderr())) {
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`server-everything did not start:\n${p.stdout()}${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `http://127.0.0.1:${port}/mcp`, stop: () => stop(p, "SIGKILL") };
}

/**
 * The gateway CLI with `--config`: `upstreamUrl` as the server `everything` with `auth: "none"`
 * (no upstream leg), served at `<url>/mcp/everything`, which is also its authorization server's issuer.
 * `opts.env`: e.g. NODE_EXTRA_CA_CERTS for a test's Client ID Metadata Document host.
 */
export async function startGateway(
  upstreamUrl: string,
  opts: { args?: string[]; env?: Record<string, string> } = {},
): Promise<GatewayProcess & { issuer: string; mcpUrl: string }> {
  const dir = tempDir("gateway-conformance");
  const config = join(dir, "gateway.json");
  writeFileSync(config, JSON.stringify({ mcpServers: { everything: { url: upstreamUrl, auth: "none" } } }));
  const port = await freePort();
  const gateway = await startGatewayProcess(["--port", String(port), "--config", config, "--store", "memory", ...(opts.args ?? [])], {
    MCP_GATEWAY_USERNAME: LOGIN.username,
    MCP_GATEWAY_PASSWORD: LOGIN.password,
    HOME: dir,
    ...opts.env,
  });
  const origin = `http://localhost:${port}`;
  return { ...gateway, issuer: `${origin}/mcp/everything`, mcpUrl: `${origin}/mcp/everything` };
}

/** What the suite's authorization-code-grant scenario prints before it waits for the callback. */
const AUTHORIZATION_URL = /Access the following URL in your browser[^\n]*\n(\S+)\n/;

/**
 * The human step of the suite's authorization-code-grant scenario: open the URL it prints, sign in
 * and approve on Screen 1, and let the browser land on the suite's callback with whatever the
 * gateway sent back (code or error): the suite judges that.
 */
export async function signInWhenAsked(suite: Running, callbackPort: number): Promise<void> {
  const [, url] = await waitForStdout(suite, AUTHORIZATION_URL, 30_000);
  const redirectUri = `http://127.0.0.1:${callbackPort}/callback`;
  const back = await new TestBrowser().authorize(url!, { redirectUri, ...LOGIN });
  const delivered = await fetch(back);
  if (delivered.status !== 200) throw new Error(`the suite's callback answered ${delivered.status}`);
}

/**
 * A gateway access token for the MCP URL, obtained as an MCP client does (oauth-walk.ts): discovery
 * from its 401, RFC 7591 registration of a public client, PKCE authorization through Screen 1, and the
 * code redeemed with `resource` (RFC 8707).
 */
export async function gatewayToken(gateway: { mcpUrl: string }): Promise<string> {
  const found = await discover(gateway.mcpUrl);
  const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  const client = await registered(found.server, { client_name: "conformance suite", redirect_uris: [redirectUri], token_endpoint_auth_method: "none" });
  const { tokens } = await signInAndRedeem(found, client, { redirectUri, resource: gateway.mcpUrl });
  return tokens.access_token;
}
