import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestBrowser } from "./browser.js";
import { cleanEnv, freePort, launch, stop, tempDir, waitForStdout, type Running } from "./processes.js";
import { LOGIN } from "./config.js";

/**
 * What a test needs to run MCP clients we did not write (mcp-remote, the MCP Inspector's CLI) through a
 * real sign-in: the gateway as `mcp-oauth-gateway demo` starts it, and a fake web browser for their opener.
 */

export interface DemoGateway {
  port: number;
  /** `http://<host>:<port>/mcp` for a loopback name the user may type. */
  mcpUrl(host?: "127.0.0.1" | "localhost"): string;
  process: Running;
  close(): Promise<void>;
}

/** `mcp-oauth-gateway demo` (the GitHub simulator behind the gateway) as a real process, without --public-url. */
export async function startDemoGateway(): Promise<DemoGateway> {
  const port = await freePort();
  const p = launch(
    process.execPath,
    ["--import", "tsx", "src/main.ts", "demo", "--port", String(port)],
    cleanEnv({ HOME: tempDir("gateway-demo-home"), MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password }),
  );
  await waitForStdout(p, /MCP URL:\s+\S+/, 20_000);
  return {
    port,
    mcpUrl: (host = "127.0.0.1") => `http://${host}:${port}/mcp`,
    process: p,
    close: () => stop(p),
  };
}

/**
 * The user's web browser as a client's opener finds it: `BROWSER` names a script that writes each URL it is
 * asked to open to a file. Both mcp-remote and the Inspector open URLs with the `open` package, whose bundled
 * `xdg-open` runs `$BROWSER <url>` when no desktop session is detected; `env` removes what would detect one.
 */
export class FakeOpener {
  readonly #log: string;
  readonly script: string;
  #taken = 0;

  constructor() {
    const dir = tempDir("fake-browser");
    this.#log = join(dir, "opened.txt");
    this.script = join(dir, "browser");
    writeFileSync(this.script, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${this.#log}'\n`);
    chmodSync(this.script, 0o755);
  }

  /** The environment that sends a client's "open the browser" here. */
  get env(): Record<string, string> {
    return { BROWSER: this.script, DISPLAY: "", WAYLAND_DISPLAY: "", XDG_CURRENT_DESKTOP: "", DBUS_SESSION_BUS_ADDRESS: "" };
  }

  /**
   * The next URL the client opened. Fails after `ms`, or as soon as `client.gone()` says the client ended,
   * with what `client.said()` returns (its output).
   */
  async next(ms: number, client: { said: () => string; gone?: () => boolean }): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const lines = existsSync(this.#log) ? readFileSync(this.#log, "utf8").split("\n").filter(Boolean) : [];
      if (lines.length > this.#taken) return lines[this.#taken++]!;
      if (client.gone?.()) throw new Error(`the client ended without opening a browser\n${client.said()}`);
      if (Date.now() > deadline) throw new Error(`the client opened no browser within ${ms} ms\n${client.said()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * The person at the browser: sign in to the gateway, approve, approve again on the simulated GitHub page,
 * then let the browser land on the client's own callback listener. Returns that listener's answer.
 */
export async function signInAs(
  authorizationUrl: string,
  browser = new TestBrowser(),
): Promise<{ callback: URL; status: number; text: string; visited: string[] }> {
  const redirectUri = new URL(authorizationUrl).searchParams.get("redirect_uri");
  if (!redirectUri) throw new Error(`no redirect_uri in the authorization URL ${authorizationUrl}`);
  const callback = await browser.authorize(authorizationUrl, { redirectUri, ...LOGIN });
  if (!callback.searchParams.get("code")) throw new Error(`the gateway sent the browser back without a code: ${callback.href}`);
  const landed = await browser.request(callback.href);
  return { callback, status: landed.status, text: landed.text, visited: browser.visited };
}
