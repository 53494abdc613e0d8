import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, tempDir } from "../support/processes.js";

/**
 * docs/security.md SC1: the package is not on the npm registry, so the documented install never asks
 * the registry for its name. It is packed from a clone, installed from the tarball, and run by path.
 */

/** Every document a user copies commands from. */
const DOCUMENTS = [
  "README.md",
  ".env.example",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
/** Runners that fetch a package by name from a registry when it is not installed locally. */
const FETCHING_RUNNER = /\b(?:npx|pnpx|bunx|npm\s+exec|pnpm\s+dlx|yarn\s+dlx)((?:\s+-[-\w=]*)*)\s+mcp-oauth-gateway\b/g;
/** Installs by name, from the registry (a path to a tarball or a directory is fine). */
const REGISTRY_INSTALL = /\b(?:npm|pnpm|yarn|bun)\s+(?:i|install|add)((?:\s+-[-\w=]*)*)\s+mcp-oauth-gateway(?:@\S*)?(?=[\s`'"]|$)/gm;

/** Node's directory first, so `#!/usr/bin/env node` finds the Node running the tests, as it finds the system's under systemd. */
const PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
/** npm's own variables from `npm test` (npm_config_prefix, npm_config_global, …) would redirect the commands below. */
const npmEnv = () => ({ ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))), npm_config_update_notifier: "false" });

function npm(args: string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync("npm", args, { cwd, env: npmEnv(), encoding: "utf8", timeout: 300_000 });
  if (result.status !== 0) throw new Error(`npm ${args.join(" ")} failed (${result.status ?? result.signal}):\n${result.stderr}\n${result.stdout}`);
  return result;
}

/** The ```ini block of docs/deployment.md that holds the systemd unit. */
function documentedUnit(): string {
  const blocks = [...readFileSync(join(ROOT, "docs/deployment.md"), "utf8").matchAll(/^```ini\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const units = blocks.filter((b) => b.includes("[Service]"));
  expect(units, "systemd units in docs/deployment.md").toHaveLength(1);
  return units[0]!;
}

/** systemd.syntax(7): sections, `Key=value` lines, comments only on lines of their own. */
function parseUnit(text: string): { sections: string[]; values: Map<string, string[]>; problems: string[] } {
  const sections: string[] = [];
  const values = new Map<string, string[]>();
  const problems: string[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[([A-Za-z]+)\]$/.exec(line)?.[1];
    if (section) {
      sections.push(section);
      continue;
    }
    const entry = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!entry || sections.length === 0) {
      problems.push(`line ${i + 1} is not Key=value inside a section: ${line}`);
      continue;
    }
    const [, key, value] = entry as unknown as [string, string, string];
    // systemd has no trailing comments: `EnvironmentFile=/etc/x.env   # note` names a file called "/etc/x.env   # note"
    if (/\s[#;]/.test(value)) problems.push(`line ${i + 1} has a comment after its value: ${line}`);
    const name = `${sections.at(-1)}.${key}`;
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return { sections, values, problems };
}

describe("SC1 the documented install", () => {
  const scratch = tempDir("gateway-pack");
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("SC1 no document runs mcp-oauth-gateway through npx without --no-install, or installs it by name from the registry", () => {
    const offenders: string[] = [];
    let runs = 0;
    for (const document of DOCUMENTS) {
      const text = readFileSync(join(ROOT, document), "utf8");
      for (const m of text.matchAll(FETCHING_RUNNER)) {
        runs++;
        // outside a clone npx (`--yes` whenever stdin is not a terminal, as under systemd) installs and runs the registry's package
        if (!/\s--no-install\b|\s--no\b|\s--yes=false\b/.test(m[1]!)) offenders.push(`${document}: ${m[0]}`);
      }
      for (const m of text.matchAll(REGISTRY_INSTALL)) offenders.push(`${document}: ${m[0]}`);
    }
    expect(offenders).toEqual([]);
    // the check reads the documents it means to: the clone's own runs are there, with --no-install
    expect(runs).toBeGreaterThan(0);
  });

  it("SC1 the systemd unit in docs/deployment.md has [Unit], [Service] and [Install], no trailing comments, the installed binary by absolute path and a file limit for its streams", () => {
    const { sections, values, problems } = parseUnit(documentedUnit());
    expect(problems).toEqual([]);
    expect(sections).toEqual(["Unit", "Service", "Install"]);
    const one = (name: string) => {
      expect(values.get(name), name).toHaveLength(1);
      return values.get(name)![0]!;
    };

    const [executable, ...args] = one("Service.ExecStart").split(/\s+/);
    expect(executable).toMatch(/^\/[^\s]+$/);
    expect(["npx", "npm", "pnpm", "pnpx", "yarn", "bunx", "env"]).not.toContain(basename(executable!));
    expect(basename(executable!) === "mcp-oauth-gateway" || args[0]?.endsWith("/mcp-oauth-gateway/dist/main.js"), executable).toBe(true);
    expect(one("Service.EnvironmentFile")).toMatch(/^-?\/\S+$/);
    expect(one("Service.User")).not.toMatch(/^(root|0)$/);
    // each open event stream holds two sockets; systemd's default soft limit is 1024 descriptors
    expect(Number(one("Service.LimitNOFILE"))).toBeGreaterThanOrEqual(8192);
    expect(one("Install.WantedBy")).toBe("multi-user.target");
  });

  // test/system-deps.sh installs systemd-analyze (Debian's systemd) before npm test: this never skips
  it("SC1 systemd-analyze verify accepts the unit in docs/deployment.md", () => {
    // verify insists that ExecStart's program exists: stand in a stub at another path, same arguments
    const stub = join(scratch, "mcp-oauth-gateway");
    writeFileSync(stub, "#!/bin/sh\n");
    chmodSync(stub, 0o755);
    const unit = join(scratch, "mcp-oauth-gateway.service");
    writeFileSync(unit, documentedUnit().replace(/^ExecStart=\S+/m, `ExecStart=${stub}`));
    const verified = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
    // warnings ("Unknown key", "Failed to parse … ignoring") still exit 0: the unit is clean only when verify says nothing
    expect(`${verified.stdout}${verified.stderr}`.trim()).toBe("");
    expect(verified.status).toBe(0);
  });

  it("SC1 npm pack from a clone, installed into a scratch prefix, runs its --help and its demo from there", async () => {
    const started = Date.now();
    const took = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    // a clone: the working tree without node_modules (linked, for the build), .git or a previous dist
    const clone = join(scratch, "clone");
    const skip = new Set(["node_modules", ".git", "dist", "coverage", "scratch", ".env"].map((name) => join(ROOT, name)));
    cpSync(ROOT, clone, { recursive: true, filter: (source) => !skip.has(source) });
    symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"));

    const out = join(scratch, "out");
    mkdirSync(out);
    const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", out], clone).stdout) as { filename: string; files: { path: string }[] }[];
    const tarball = join(out, packed[0]!.filename);
    console.log(`SC1: packed ${packed[0]!.filename} (${packed[0]!.files.length} files) at ${took()}`);
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["package.json", "dist/main.js", "views/error.ejs", "views/login.ejs", "README.md"]));
    // the build ran (prepare), and nothing but what the gateway runs on is shipped: no sources, tests, env file or data
    expect(files.filter((f) => !/^(dist\/|views\/|docs\/gateway\.schema\.json$|package\.json$|README\.md$|\.env\.example$)/.test(f))).toEqual([]);

    // Skipping install scripts keeps this to seconds: better-sqlite3's native build takes minutes here. Its binding
    // comes from the clone's node_modules instead, when the versions match (they do, from the same npm cache).
    const prefix = join(scratch, "prefix");
    npm(["install", "--global", "--prefix", prefix, "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund", tarball], scratch);
    const installed = join(prefix, "lib/node_modules/mcp-oauth-gateway");
    provideSqliteBinding(join(installed, "node_modules/better-sqlite3"), installed);
    console.log(`SC1: installed into ${prefix} at ${took()}`);

    const bin = join(prefix, "bin/mcp-oauth-gateway");
    expect(realpathSync(bin)).toBe(realpathSync(join(installed, "dist/main.js"))); // the tarball's copy, not the clone's
    const home = join(scratch, "home");
    mkdirSync(home);
    const env = { PATH, HOME: home, MCP_GATEWAY_ENV_FILE: "/dev/null" };

    const help = spawnSync(bin, ["--help"], { cwd: home, env, encoding: "utf8", timeout: 30_000 });
    expect([help.status, help.stderr]).toEqual([0, ""]);
    expect(help.stdout).toMatch(/^Usage: mcp-oauth-gateway /);

    // the demo on the SQLite store a systemd unit uses (--data-dir), from outside any clone
    const dataDir = join(scratch, "data");
    const demo = await runUntilBanner(bin, ["demo", "--port", "0", "--store", "sqlite", "--data-dir", dataDir], home, env);
    try {
      const origin = new URL(demo.mcpUrl).origin;
      const metadata = await request(`${origin}/.well-known/oauth-authorization-server`);
      expect(metadata.statusCode).toBe(200);
      expect(((await metadata.body.json()) as { issuer: string }).issuer).toBe(origin);
      // a page rendered from the tarball's views/
      const page = await request(`${origin}/login`);
      expect(page.statusCode).toBe(400);
      expect(page.headers["content-type"]).toMatch(/^text\/html/);
      const html = await page.body.text();
      expect(html).toContain("This sign-in cannot continue"); // views/error.ejs, through ejs: both must ship
      expect(html).toContain("<code>invalid_request</code>");
    } finally {
      demo.child.kill("SIGTERM");
    }
    expect(await demo.exited).toEqual({ code: 0, signal: null });
    expect(readdirSync(dataDir).length).toBeGreaterThan(0);
  }, 300_000);
});

/** better-sqlite3's compiled binding for the installed copy: the clone's when it is the same version, else built. */
function provideSqliteBinding(target: string, installed: string): void {
  const source = join(ROOT, "node_modules/better-sqlite3");
  const version = (dir: string) => (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
  const binding = "build/Release/better_sqlite3.node";
  if (version(source) === version(target) && existsSync(join(source, binding))) {
    mkdirSync(join(target, "build/Release"), { recursive: true });
    copyFileSync(join(source, binding), join(target, binding));
  } else npm(["rebuild", "better-sqlite3", "--foreground-scripts"], installed);
}

/** Start `bin`, wait for the demo's banner; the process is the caller's to stop. */
async function runUntilBanner(bin: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(bin, args, { cwd, env });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    const mcpUrl = /MCP URL:\s+(\S+)/.exec(stdout)?.[1];
    if (mcpUrl) return { child, exited, mcpUrl };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`no banner from ${bin} ${args.join(" ")} (exit ${child.exitCode})\nstdout: ${stdout}\nstderr: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
