import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, killAll, launchOnNode22, tempDir, type Running } from "../support/processes.js";
import { FakeOpener, signInAs, startDemoGateway, type DemoGateway } from "../support/real-clients.js";

/**
 * The MCP Inspector's CLI mode (`mcp-inspector --cli`), the real package, against a real gateway process
 * started without --public-url. Without a terminal it signs in only when MCP_AUTO_OPEN_ENABLED=true; it
 * then opens `BROWSER` (here a script the test reads), waits on its loopback callback, and runs the method.
 * The Inspector 2.x needs Node >= 22.19: it runs on the `node` devDependency (Node 22), the gateway on ours.
 */

const require = createRequire(import.meta.url);
const PACKAGE = join(require.resolve("@modelcontextprotocol/inspector/package.json"), "..");
const INSPECTOR = join(PACKAGE, "clients", "launcher", "build", "index.js");
const VERSION = (require("@modelcontextprotocol/inspector/package.json") as { version: string }).version;

let gateway: DemoGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  killAll();
});

/** One `mcp-inspector --cli <url> --format json …` run, as a CI job would type it, with a fresh home of its own. */
function inspectorCli(args: string[], home: string, opener: FakeOpener): Running {
  if (!existsSync(INSPECTOR)) throw new Error(`${INSPECTOR} is missing: run npm ci`);
  return launchOnNode22([INSPECTOR, "--cli", ...args, "--format", "json"], {
    PATH: process.env.PATH,
    HOME: home,
    // No keychain in CI: its OAuth state goes to <home>/.mcp-inspector/secrets.json (it warns: unencrypted).
    MCP_INSPECTOR_SECRET_STORE: "file",
    MCP_AUTO_OPEN_ENABLED: "true",
    ...opener.env,
  });
}

const said = (p: Running) =>
  `inspector exit ${p.child.exitCode ?? p.child.signalCode}\nstdout:\n${p.stdout()}\nstderr:\n${p.stderr()}\ngateway:\n${gateway?.process.stdout()}`;

/** The process's end, bounded: a hung client fails the test with what it said. */
async function finished(p: Running, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms\n${said(p)}`)), ms)));
  try {
    return (await Promise.race([p.exited, timeout])).code;
  } finally {
    clearTimeout(timer);
  }
}

describe(`MCP Inspector ${VERSION} --cli`, () => {
  it("signs in through BROWSER, calls get_me, and a later --stored-auth-only run lists tools (http://127.0.0.1:<port>/mcp)", async () => {
    gateway = await startDemoGateway();
    const opener = new FakeOpener();
    const home = tempDir("inspector-home");
    const callbackUrl = `http://127.0.0.1:${await freePort()}/oauth/callback`;
    const target = [gateway.mcpUrl("127.0.0.1"), "--transport", "http", "--callback-url", callbackUrl];

    const call = inspectorCli([...target, "--method", "tools/call", "--tool-name", "get_me"], home, opener);
    const authorizationUrl = await opener.next(30_000, { said: () => said(call), gone: () => call.child.exitCode !== null });
    const authorize = new URL(authorizationUrl);
    expect(authorize.pathname, said(call)).toBe("/authorize");
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("redirect_uri")).toBe(callbackUrl);

    const landed = await signInAs(authorizationUrl);
    expect(
      landed.visited.some((url) => url.includes("/login/oauth/authorize")),
      "the simulated GitHub page was shown",
    ).toBe(true);
    expect(landed.status, `${landed.text}\n${said(call)}`).toBe(200); // its listener answers once it has exchanged the code

    expect(await finished(call, 30_000), said(call)).toBe(0);
    const { result } = JSON.parse(call.stdout()) as { result: { content: { type: string; text: string }[]; isError?: boolean } };
    expect(result.isError, said(call)).toBeFalsy();
    expect(result.content[0]!.text).toContain('"login":"octocat"');

    const list = inspectorCli([...target, "--method", "tools/list", "--stored-auth-only"], home, opener);
    expect(await finished(list, 30_000), said(list)).toBe(0);
    const { tools } = (JSON.parse(list.stdout()) as { result: { tools: { name: string }[] } }).result;
    expect(tools.map((t) => t.name)).toContain("get_me");
    await expect(opener.next(200, { said: () => said(list) })).rejects.toThrow(/opened no browser/);
  }, 90_000);
});
