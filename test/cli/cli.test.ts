import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parsePasswordHash, verifyPassword } from "../../src/login/passwords.js";
import { cleanEnv, killAll, launch, tempDir, waitForStdout, type Running } from "../support/processes.js";

const FLAGS = [
  "--port",
  "--host",
  "--public-url",
  "--upstream-rs",
  "--upstream-as",
  "--upstream-client-id",
  "--upstream-client-secret",
  "--upstream-authorize-endpoint",
  "--upstream-token-endpoint",
  "--upstream-scope",
  "--store",
  "--data-dir",
  "--trust-proxy",
];

/** A fresh home, where the default sqlite store goes. */
const HOME = tempDir("gateway-cli-home");

afterEach(killAll);

const launchGateway = (args: string[], env: Record<string, string | undefined> = {}): Running =>
  launch(process.execPath, ["--import", "tsx", "src/main.ts", ...args], cleanEnv({ HOME, ...env }));

/** Run to completion; the process must end by itself. */
async function run(args: string[], env?: Record<string, string>) {
  const p = launchGateway(args, env);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** SIGTERM, then how the process ended: { code: 0, signal: null } is a clean shutdown. */
async function stop(p: Running): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  p.child.kill("SIGTERM");
  return p.exited;
}

const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

describe("mcp-oauth-gateway CLI", () => {
  it("--help exits 0 and lists every flag of DESIGN §2 with its variable", async () => {
    const { code, stdout, stderr } = await run(["--help"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    for (const flag of FLAGS) {
      const line = lines(stdout).find((l) => l.trimStart().startsWith(`${flag} `));
      expect(line, `${flag} missing from --help`).toBeDefined();
      expect(line).toContain(`MCP_GATEWAY_${flag.slice(2).toUpperCase().replace(/-/g, "_")}`);
    }
    expect(stdout).toContain("MCP_GATEWAY_USERNAME");
    expect(stdout).toContain("MCP_GATEWAY_PASSWORD");
    expect(stdout).toMatch(/^\s+demo\s/m);
    expect(stdout).toMatch(/^\s+hash-password\s/m);
    expect(stdout).toContain("MCP_GATEWAY_PASSWORD_HASH");
    expect(stdout).toContain("--users-file");
  });

  it("exits 2 with one line naming --upstream-rs and the fix when it is missing", async () => {
    const { code, stdout, stderr } = await run([]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(lines(stderr)).toHaveLength(1);
    expect(stderr).toContain("--upstream-rs");
    expect(stderr).toMatch(/e\.g\. --upstream-rs https:\/\/|demo/);
  });

  it("exits 2 naming --port for --port abc", async () => {
    const { code, stderr } = await run(["--port", "abc", "--upstream-rs", "http://127.0.0.1:9/mcp"]);
    expect(code).toBe(2);
    expect(lines(stderr)).toHaveLength(1);
    expect(stderr).toContain("--port");
  });

  it("exits 2 with one line for a flag given without its value", async () => {
    const { code, stderr } = await run(["--upstream-rs", "--port", "8000"]);
    expect(code).toBe(2);
    expect(lines(stderr)).toHaveLength(1);
    expect(stderr).toContain("--upstream-rs");
  });

  it("refuses --password on the command line with exit 2, naming MCP_GATEWAY_PASSWORD, never echoing it", async () => {
    const { code, stdout, stderr } = await run(["--password", "x-hunter2", "--upstream-rs", "http://127.0.0.1:9/mcp"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(lines(stderr)).toHaveLength(1);
    expect(stderr).toContain("MCP_GATEWAY_PASSWORD");
    expect(stderr).not.toContain("x-hunter2");
  });

  it("starts in front of an unreachable upstream, prints the URLs and a generated password, and stops on SIGTERM", async () => {
    const p = launchGateway(["--port", "0", "--upstream-rs", "http://127.0.0.1:9/mcp"]);
    const [, base] = await waitForStdout(p, /MCP URL for clients:\s+(http:\/\/localhost:\d+)\/mcp\n/, 10_000);
    await waitForStdout(p, /Gateway password:.*\n/);
    const out = p.stdout();
    expect(base).not.toBe("http://localhost:0");
    expect(out).toContain(`Upstream callback URL:  ${base}/upstream/callback`);
    expect(out).toMatch(/Gateway password:\s+[A-Za-z0-9_-]{20,}\s+\(generated/);
    expect(out).toContain("http://127.0.0.1:9/mcp");
    const metadata = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`);
    expect(metadata.status).toBe(200);
    expect(await stop(p), p.stderr()).toEqual({ code: 0, signal: null });
  });

  it("says so when the password comes from the environment, and never prints it", async () => {
    const p = launchGateway(["--port", "0", "--upstream-rs", "http://127.0.0.1:9/mcp"], { MCP_GATEWAY_PASSWORD: "env-password-123456" });
    await waitForStdout(p, /State:.*\n/, 10_000);
    expect(p.stdout()).toMatch(/Gateway login:\s+admin\s+\(password from MCP_GATEWAY_PASSWORD\)\n/);
    expect(p.stdout()).not.toContain("Gateway password:");
    expect(p.stdout() + p.stderr()).not.toContain("env-password-123456");
  });

  it("hash-password prints a scrypt hash of the line on stdin, which the gateway then takes", async () => {
    const p = launchGateway(["hash-password"]);
    p.child.stdin.end("a pass phrase with spaces\nignored second line\n");
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const hash = p.stdout().trim();
    expect(hash).toMatch(/^scrypt\$ln=\d+,r=\d+,p=\d+\$[\w-]+\$[\w-]+$/);
    expect(await verifyPassword("a pass phrase with spaces", parsePasswordHash(hash)!)).toBe(true);

    const empty = launchGateway(["hash-password"]);
    empty.child.stdin.end("");
    expect((await empty.exited).code).toBe(2);
    expect(empty.stderr()).toContain("hash-password");

    const gateway = launchGateway(["--port", "0", "--upstream-rs", "http://127.0.0.1:9/mcp"], {
      MCP_GATEWAY_USERNAME: "alice",
      MCP_GATEWAY_PASSWORD_HASH: hash,
    });
    await waitForStdout(gateway, /State:.*\n/, 10_000);
    expect(gateway.stdout()).toMatch(/Gateway login:\s+alice\s+\(password from MCP_GATEWAY_PASSWORD_HASH\)\n/);
    expect(gateway.stdout()).not.toContain(hash.split("$")[3]!);

    const users = join(tempDir("gateway-cli-users"), "users");
    writeFileSync(users, `# the team\nalice:${hash}\nbob:${hash}\ncarol:${hash}\n`);
    const team = launchGateway(["--port", "0", "--upstream-rs", "http://127.0.0.1:9/mcp", "--users-file", users]);
    await waitForStdout(team, /State:.*\n/, 10_000);
    expect(team.stdout()).toContain(`Gateway login:          3 users from users file ${users}\n`);
  });

  it("exits 2 naming the file and line of a malformed users file, without the hash", async () => {
    const users = join(tempDir("gateway-cli-users"), "users");
    writeFileSync(users, "alice:scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$hunter2hunter2\n");
    const { code, stderr } = await run(["--upstream-rs", "http://127.0.0.1:9/mcp", "--users-file", users]);
    expect(code).toBe(2);
    expect(lines(stderr)).toHaveLength(1);
    expect(stderr).toContain(`--users-file ${users} line 1`);
    expect(stderr).not.toContain("hunter2");
  });

  it("RU1 revoke refuses --store memory with exit 2, and on a store without the named grants says so and exits 0", async () => {
    const upstream = ["--upstream-rs", "http://127.0.0.1:9/mcp"];
    const memory = await run(["revoke", "--user", "bob", "--store", "memory", ...upstream]);
    expect(memory.code).toBe(2);
    expect(memory.stdout).toBe("");
    expect(lines(memory.stderr)).toHaveLength(1);
    expect(memory.stderr).toContain("--store memory");

    const none = await run(["revoke", "--user", "bob", "--client", "some-client", "--data-dir", join(tempDir("gateway-cli-revoke"), "data"), ...upstream]);
    expect(none.stderr).toBe("");
    expect(none.code).toBe(0);
    expect(none.stdout).toContain("No live grants of user bob, client some-client");
  });

  // A supervisor may send SIGTERM the moment the gateway says it is up: the handler must exist by then.
  it.each([
    ["the gateway", ["--port", "0", "--upstream-rs", "http://127.0.0.1:9/mcp"], "Gateway password:"],
    ["the demo", ["demo", "--port", "0"], "MCP Inspector:"],
  ])("stops %s cleanly on a SIGTERM sent as soon as its banner is out", async (_what, args, last) => {
    const p = launchGateway(args);
    p.child.stdout.on("data", () => {
      if (p.stdout().includes(last)) p.child.kill("SIGTERM");
    });
    const ended = await p.exited;
    expect(p.stdout()).toContain(last);
    expect(ended, p.stderr()).toEqual({ code: 0, signal: null });
  });

  it("demo prints the MCP URL and client set-up lines, and serves its issuer at that URL", async () => {
    const p = launchGateway(["demo", "--port", "0"]);
    await waitForStdout(p, /MCP Inspector:.*\n/, 10_000);
    const out = p.stdout();
    const mcpUrl = out.match(/MCP URL:\s+(http:\/\/\S+\/mcp)\n/)?.[1];
    expect(mcpUrl, out).toBeDefined();
    expect(out).toContain(`claude mcp add --transport http github-demo ${mcpUrl}`);
    expect(out).toContain("mcp.json");
    expect(out).toContain(`"url": "${mcpUrl}"`);
    expect(out).toContain("@modelcontextprotocol/inspector");
    expect(out).toMatch(/Gateway password:\s+[A-Za-z0-9_-]{20,}\s+\(generated/);

    const base = mcpUrl!.replace(/\/mcp$/, "");
    const response = await fetch(`${base}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const metadata = (await response.json()) as { issuer: string; authorization_endpoint: string };
    expect(metadata.issuer).toBe(base);
    expect(metadata.authorization_endpoint).toBe(`${base}/authorize`);
    expect(await stop(p), p.stderr()).toEqual({ code: 0, signal: null });
  });
});
