import Database from "better-sqlite3";
import { createServer } from "node:net";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RATE_RULES } from "../../src/ratelimit.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { loginForm, TestBrowser } from "../support/browser.js";
import { LOGIN } from "../support/config.js";
import { clientAuthorizeUrl, obtainCode, redeem, register } from "../support/oauth-steps.js";
import { childPids, freePort, isRunning, killAll, launch, startGatewayProcess, tempDir, cleanEnv, type GatewayProcess } from "../support/processes.js";

const app = DEFAULT_APPS.find((a) => a.kind === "github_app")!;
const GRACE_SECONDS = 2;

/** The gateway's workers: the primary's children that run the gateway. */
const workerPids = (gateway: GatewayProcess): number[] => childPids(gateway.child.pid!, "src/main.ts");

/** Every request on a connection of its own, so node:cluster's round robin hands them to each worker in turn. */
const fresh = new Agent({ pipelining: 0 });

/** The pid of the worker that logged each access line `METHOD path status` since `from` (an offset in stderr). */
function servedBy(gateway: GatewayProcess, line: RegExp, from = 0): number[] {
  const pattern = new RegExp(`\\[worker \\d+ pid (\\d+)\\] ${line.source}`, "g");
  return [...gateway.stderr().slice(from).matchAll(pattern)].map((m) => Number(m[1]));
}

/** A stateless MCP tools/call (the simulator keeps no session), on a new connection: its status and the tool's text. */
async function getMe(gatewayUrl: string, accessToken: string): Promise<{ status: number; text?: string }> {
  const response = await fetch(`${gatewayUrl}/mcp`, {
    method: "POST",
    dispatcher: fresh,
    headers: {
      authorization: `Bearer ${accessToken}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_me", arguments: {} } }),
  });
  const data = /^data: (.*)$/m.exec(await response.text())?.[1];
  const text = data === undefined ? undefined : (JSON.parse(data) as { result?: { content: { text: string }[] } }).result?.content[0]?.text;
  return { status: response.status, ...(text === undefined ? {} : { text }) };
}

describe("--workers 2 --store sqlite: one port, two processes, one store", () => {
  let simulator: Simulator;
  let gateway: GatewayProcess;
  let accessToken: string;
  let dataDir = "";

  beforeAll(async () => {
    simulator = await startSimulator();
    const port = await freePort();
    dataDir = `${tempDir("gateway-workers")}/data`;
    const args = ["--workers", "2", "--store", "sqlite", "--data-dir", dataDir, "--port", String(port), "--public-url", `http://127.0.0.1:${port}`];
    args.push("--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId, "--shutdown-grace", String(GRACE_SECONDS));
    // no password given: the one generated must be the same on every worker
    const env = { MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0], MCP_GATEWAY_USERNAME: LOGIN.username };
    gateway = await startGatewayProcess(args, { ...env, HOME: tempDir("gateway-workers-home") }, 60_000);
  }, 90_000);

  afterAll(async () => {
    killAll();
    await simulator?.close();
  });

  it("prints one banner, after both workers listen, naming them: the primary's two children", () => {
    expect(gateway.stdout().match(/listening on/g)).toHaveLength(1);
    const pids = /Workers: +2 processes sharing the port \(pids (\d+), (\d+)\)/.exec(gateway.stdout())!.slice(1).map(Number);
    expect(pids.sort()).toEqual(workerPids(gateway).sort());
  });

  it("keeps one master secret, generated once, in the one SQLite file every worker opened", () => {
    const db = new Database(`${dataDir}/gateway.db`, { readonly: true });
    try {
      expect(db.prepare("SELECT key FROM kv WHERE key LIKE 'meta:%'").all()).toEqual([{ key: "meta:secret" }]);
    } finally {
      db.close();
    }
    expect(gateway.stdout()).toContain("master secret generated once and kept in the store");
  });

  it("carries a full sign-in (with the one generated password) and /mcp calls, landing on both workers", async () => {
    const password = /Gateway password: +(\S+)/.exec(gateway.stdout())![1]!;
    const browser = new TestBrowser({}, { dispatcher: fresh });
    const code = await obtainCode(gateway.url, { browser, login: { username: LOGIN.username, password } });
    const issued = await redeem(gateway.url, code);
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    accessToken = issued.body.access_token!;
    const from = gateway.stderr().length;
    for (let call = 0; call < 4; call++)
      expect(await getMe(gateway.url, accessToken)).toEqual({ status: 200, text: expect.stringContaining(simulator.users[0]!.login) });
    await waitFor(() => servedBy(gateway, /POST \/mcp 200/, from).length === 4);
    expect(new Set(servedBy(gateway, /POST \/mcp 200/, from))).toEqual(new Set(workerPids(gateway)));
    expect(new Set(servedBy(gateway, /(GET|POST) \/login \d+/))).toEqual(new Set(workerPids(gateway)));
  }, 30_000);

  it("counts failed sign-ins on both workers against one limit", async () => {
    const { client_id } = await register(gateway.url);
    const browser = new TestBrowser({}, { dispatcher: fresh });
    const start = await browser.request(clientAuthorizeUrl(gateway.url, client_id, { state: "s" }));
    const form = loginForm((await browser.request(start.location!)).text)!;
    const attempt = async (username: string, password: string) =>
      (await browser.request(`${gateway.url}/login`, { form: { ...form, username, password, decision: "approve" } })).status;
    const from = gateway.stderr().length;
    // each failure for another user name, so no per-user back-off starts: only the per-address counter
    for (let i = 0; i < RATE_RULES.loginFailure.limit; i++) expect(await attempt(`guess-${i}`, "wrong")).toBe(401);
    await waitFor(() => servedBy(gateway, /POST \/login 401/, from).length === RATE_RULES.loginFailure.limit);
    const perWorker = servedBy(gateway, /POST \/login 401/, from).reduce((n, pid) => n.set(pid, (n.get(pid) ?? 0) + 1), new Map<number, number>());
    expect(perWorker.size).toBe(2);
    expect(Math.max(...perWorker.values())).toBeLessThan(RATE_RULES.loginFailure.limit); // neither worker alone saw the limit
    for (let i = 0; i < 2; i++) expect(await attempt("someone-else", "wrong")).toBe(429);
    await waitFor(() => servedBy(gateway, /POST \/login 429/, from).length === 2);
    expect(new Set(servedBy(gateway, /POST \/login 429/, from)).size).toBe(2);
  }, 30_000);

  /** Send `signal` to one worker; once another listens in its place, the workers' pids. */
  async function replaced(signal: NodeJS.Signals): Promise<number[]> {
    const [victim, survivor] = workerPids(gateway) as [number, number];
    const from = gateway.stderr().length;
    process.kill(victim, signal);
    await waitFor(() => new RegExp(`\\(pid ${victim}\\) ended \\(\\w+\\): starting another`).test(gateway.stderr().slice(from)), 15_000);
    await waitFor(() => /listening in place of the one that ended/.test(gateway.stderr().slice(from)), 30_000);
    const after = workerPids(gateway);
    expect(after).toHaveLength(2);
    expect(after).toContain(survivor);
    expect(after).not.toContain(victim);
    return after;
  }

  it("replaces a worker killed with SIGKILL, and service goes on on both", async () => {
    const after = await replaced("SIGKILL");
    expect(gateway.stderr()).toMatch(/ended \(SIGKILL\): starting another/);
    const calls = gateway.stderr().length;
    for (let call = 0; call < 4; call++) expect((await getMe(gateway.url, accessToken)).status).toBe(200);
    await waitFor(() => servedBy(gateway, /POST \/mcp 200/, calls).length === 4);
    expect(new Set(servedBy(gateway, /POST \/mcp 200/, calls))).toEqual(new Set(after));
  }, 60_000);

  it("replaces a worker stopped on its own with SIGTERM (it closes, exits 0, and another starts)", async () => {
    await replaced("SIGTERM");
    expect(gateway.stderr()).toMatch(/ended \(0\): starting another/);
    expect((await getMe(gateway.url, accessToken)).status).toBe(200);
  }, 60_000);

  it("ends the primary and every worker on SIGTERM within the grace", async () => {
    const pids = [gateway.child.pid!, ...childPids(gateway.child.pid!)];
    expect(workerPids(gateway)).toHaveLength(2);
    const started = Date.now();
    gateway.child.kill("SIGTERM");
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    await waitFor(() => pids.every((pid) => !isRunning(pid)), 2000);
    expect(Date.now() - started).toBeLessThan(GRACE_SECONDS * 1000 + 1500);
    expect(gateway.stderr()).toContain("info SIGTERM: shutting down"); // the primary's line: it has no worker tag
    const afterSignal = gateway.stderr().slice(gateway.stderr().indexOf("SIGTERM: shutting down"));
    expect(afterSignal).not.toContain("starting another"); // workers ending on the primary's word are not replaced
  }, 20_000);
});

describe("--workers refusals", () => {
  afterAll(killAll);

  it("refuses --store memory with --workers 2 at start, naming the fix, before any worker", async () => {
    const p = launch(
      process.execPath,
      ["--import", "tsx", "src/main.ts", "--workers", "2", "--store", "memory", "--upstream-rs", "http://127.0.0.1:9/mcp"],
      cleanEnv(),
    );
    expect(await p.exited).toEqual({ code: 2, signal: null });
    expect(p.stderr()).toBe(
      "mcp-oauth-gateway: --workers (MCP_GATEWAY_WORKERS) 2 needs a store every worker shares, and --store memory lives inside one process: use --store sqlite or a redis:// URL, or --workers 1\n",
    );
    expect(p.stdout()).toBe("");
  }, 90_000);

  it("says once, and exits 1, when the port is taken so no worker can listen", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const { port } = holder.address() as { port: number };
    const args = [
      "--workers",
      "2",
      "--port",
      String(port),
      "--data-dir",
      `${tempDir("gateway-workers-taken")}/data`,
      "--upstream-rs",
      "http://127.0.0.1:9/mcp",
    ];
    const p = launch(process.execPath, ["--import", "tsx", "src/main.ts", ...args], cleanEnv({ HOME: tempDir("gateway-workers-home") }));
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr().match(/mcp-oauth-gateway: /g)).toHaveLength(1);
    expect(p.stderr()).toContain(`port ${port} on 127.0.0.1 is in use by another process`);
    expect(p.stdout()).toBe("");
    holder.close();
  }, 90_000);
});

/** Poll `ready` every 25 ms until it holds, failing after `ms`. */
async function waitFor(ready: () => boolean, ms = 5000): Promise<void> {
  for (const deadline = Date.now() + ms; !ready(); await new Promise((r) => setTimeout(r, 25)))
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${ready.toString()}`);
}
