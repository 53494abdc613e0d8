import { homedir } from "node:os";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.js";
import { inheritedEnvironment } from "../../../src/stdio/env.js";
import { SOURCE, SECRETS, one, refusedEntry, plain } from "../../support/config-file.js";

const USER_DIR = { placeholder: "userDir" };

describe("parseUpstreamsFile: local (stdio) servers", () => {
  it("reads command, args, env, cwd, shared and identityEnv; a local server has no URL and no upstream auth", () => {
    const entry = {
      command: "npx",
      args: ["-y", "@modelcontextprotocol/server-memory"],
      env: { MEMORY_FILE_PATH: "{{userDir}}/memory.jsonl", TOKEN: "${INTERNAL_TOKEN}" },
      cwd: "/srv/memory",
      identityEnv: true,
      title: "Memory",
      allowUsers: ["alice"],
    };
    expect(one(entry)).toStrictEqual({
      name: "x",
      path: "/mcp/x",
      title: "Memory",
      resource: "",
      auth: "none",
      ...plain,
      allowUsers: ["alice"],
      stdio: {
        command: "npx",
        args: [["-y"], ["@modelcontextprotocol/server-memory"]],
        env: { MEMORY_FILE_PATH: [USER_DIR, "/memory.jsonl"], TOKEN: [SECRETS.INTERNAL_TOKEN] },
        cwd: ["/srv/memory"],
        shared: false,
        identityEnv: true,
      },
    });
  });

  it('takes "type": "stdio" and defaults: no args, no env, no cwd, one process per grant, no identity', () => {
    expect(one({ type: "stdio", command: "uvx", shared: true }).stdio).toStrictEqual({ command: "uvx", args: [], env: {}, shared: true, identityEnv: false });
    expect(one({ command: "uvx" }).stdio).toMatchObject({ shared: false, identityEnv: false });
  });

  it("cuts {{userDir}} out before ${VAR} expansion: a variable whose value holds {{userDir}} stays literal", () => {
    const env = { ...SECRETS, TRICK: "{{userDir}}", DIR: "/data" };
    const { stdio } = one({ command: "srv", args: ["--a={{userDir}}/${DIR}/{{userDir}}", "${TRICK}", "{{userDir}}", "{{nope", "$${TRICK}"] }, env);
    expect(stdio!.args).toStrictEqual([["--a=", USER_DIR, "//data/", USER_DIR], ["{{userDir}}"], [USER_DIR], ["{{nope"], ["${TRICK}"]]);
  });

  it("resolves a relative command path and cwd beside the config file; a bare command stays for PATH", () => {
    const parsed = (entry: Record<string, unknown>) => one(entry).stdio!;
    expect(parsed({ command: "./bin/server", cwd: "work" })).toMatchObject({ command: `${process.cwd()}/bin/server`, cwd: [`${process.cwd()}/work`] });
    expect(parsed({ command: "/usr/bin/server", cwd: "{{userDir}}/sub" })).toMatchObject({ command: "/usr/bin/server", cwd: [USER_DIR, "/sub"] });
    expect(parsed({ command: "mcp-server-fetch" }).command).toBe("mcp-server-fetch");
  });

  it.each([
    [
      "url",
      { command: "npx", url: "https://a.example/mcp" },
      `mcpServers.x.url is not for a local (stdio) server: a local server is started with "command"; it has no URL`,
    ],
    ["oauth", { command: "npx", oauth: {} }, "mcpServers.x.oauth is not for a local (stdio) server: the gateway signs no one in at a local server"],
    [
      "auth",
      { command: "npx", auth: "none" },
      `mcpServers.x.auth is not for a local (stdio) server: a local server gets no credentials over stdio: pass what it needs in "env"`,
    ],
    [
      "headers",
      { command: "npx", headers: {} },
      "mcpServers.x.headers is not for a local (stdio) server: a local server is spoken to over stdio, without HTTP headers",
    ],
    [
      "identityHeaders",
      { command: "npx", identityHeaders: true },
      `mcpServers.x.identityHeaders is not for a local (stdio) server: a local server gets the user's identity as MCP_GATEWAY_USER with "identityEnv": true`,
    ],
    [
      "allowOrgs",
      { command: "npx", allowOrgs: ["acme"] },
      "mcpServers.x.allowOrgs is not for a local (stdio) server: organisation membership is checked with the user's GitHub token",
    ],
    ["a url with type stdio", { type: "stdio", url: "https://a.example/mcp" }, "mcpServers.x.url is not for a local (stdio) server"],
    ["no command", { type: "stdio" }, `mcpServers.x.command is missing or empty: give the program to run, e.g. "command": "npx", with its arguments in "args"`],
    ["an empty command", { command: " " }, "mcpServers.x.command is missing or empty"],
    [
      "a command line",
      { command: "npx -y server" },
      `mcpServers.x.command is "npx -y server": no shell splits it, so give the program alone and its arguments in "args"`,
    ],
    ["a placeholder in the command", { command: "{{userDir}}/bin" }, `mcpServers.x.command: {{userDir}} goes in "args", "env" or "cwd", not in the command`],
    ["another type", { command: "npx", type: "http" }, `mcpServers.x.type must be "stdio" for a server with "command" (or be left out)`],
    [
      "an unknown key",
      { command: "npx", argv: [] },
      `mcpServers.x: unknown key "argv" (the keys are type, command, args, env, cwd, shared, identityEnv, title, allowUsers)`,
    ],
    ["args as a string", { command: "npx", args: "-y" }, `mcpServers.x.args must be an array of at most 1000 strings`],
    ["an arg that is a number", { command: "npx", args: [1] }, "mcpServers.x.args[0] must be a string without NUL characters"],
    ["a NUL in an arg", { command: "npx", args: ["a\0b"] }, "mcpServers.x.args[0] must be a string without NUL characters"],
    ["env as an array", { command: "npx", env: [] }, "mcpServers.x.env must be an object of variable names and string values"],
    [
      "a bad variable name",
      { command: "npx", env: { "1A": "x" } },
      `mcpServers.x.env.1A: a variable name is letters, digits and "_", not starting with a digit`,
    ],
    [
      "the identity variable",
      { command: "npx", env: { MCP_GATEWAY_USER: "root" } },
      `mcpServers.x.env.MCP_GATEWAY_USER: the gateway sets MCP_GATEWAY_USER itself, with "identityEnv": true`,
    ],
    [
      "a typo placeholder",
      { command: "npx", env: { F: "{{userdir}}/f" } },
      `mcpServers.x.env.F has the placeholder "{{userdir}}": the only one is {{userDir}}, the user's own directory`,
    ],
    [
      "a spaced placeholder",
      { command: "npx", args: ["{{ userDir }}"] },
      `mcpServers.x.args[0] has the placeholder "{{ userDir }}": the only one is {{userDir}}`,
    ],
    [
      "shared with {{userDir}}",
      { command: "npx", shared: true, cwd: "{{userDir}}" },
      `mcpServers.x.cwd: {{userDir}} does not go with "shared": one process serves every user; give a fixed path`,
    ],
    [
      "shared with identityEnv",
      { command: "npx", shared: true, identityEnv: true },
      `mcpServers.x: "identityEnv" does not go with "shared": one process serves every user, so there is no one user to name`,
    ],
    ["shared as a string", { command: "npx", shared: "yes" }, "mcpServers.x.shared must be true or false"],
    ["an unset variable", { command: "npx", args: ["${NOPE}"] }, "mcpServers.x.args[0] needs NOPE, which is not set"],
  ])("refuses %s", (_what, entry, message) => {
    expect(refusedEntry(entry)).toContain(`${SOURCE}: ${message}`);
  });
});

describe("--stdio-* options", () => {
  const RS = ["--upstream-rs", "https://upstream.example/mcp"];
  const load = (argv: string[], env: Record<string, string> = {}) =>
    loadConfig([...RS, ...argv], { MCP_GATEWAY_ENV_FILE: "/dev/null", MCP_GATEWAY_PASSWORD: "pw-long-enough-for-tests", ...env }).stdio;

  it("defaults to <data-dir>/stdio, 600 s idle, 50 processes, 4 per user", () => {
    expect(load([], { HOME: "/home/gw" })).toStrictEqual({
      dir: "/home/gw/.mcp-oauth-gateway/stdio",
      idleTimeout: 600,
      maxProcesses: 50,
      maxPerUser: 4,
      environment: { HOME: "/home/gw" },
    });
    expect(load([]).dir).toBe(`${homedir()}/.mcp-oauth-gateway/stdio`);
    expect(load(["--data-dir", "/var/lib/gw"]).dir).toBe("/var/lib/gw/stdio");
  });

  it("reads flags and MCP_GATEWAY_STDIO_* variables", () => {
    expect(
      load(["--stdio-dir", "~/procs", "--stdio-idle-timeout", "30", "--stdio-max-processes", "200", "--stdio-max-per-user", "2"], { HOME: "/h" }),
    ).toMatchObject({
      dir: "/h/procs",
      idleTimeout: 30,
      maxProcesses: 200,
      maxPerUser: 2,
    });
    expect(load([], { MCP_GATEWAY_STDIO_DIR: "/srv/stdio", MCP_GATEWAY_STDIO_MAX_PER_USER: "1" })).toMatchObject({ dir: "/srv/stdio", maxPerUser: 1 });
  });

  it.each([
    ["--stdio-idle-timeout", "0"],
    ["--stdio-max-processes", "0"],
    ["--stdio-max-per-user", "many"],
  ])("refuses %s %s, naming the flag", (flag, value) => {
    expect(() => load([flag, value])).toThrow(new RegExp(`^${flag} \\(MCP_GATEWAY_STDIO_[A-Z_]+\\) "${value}" is not valid: give a whole number`));
  });

  it("keeps only the allowlisted variables of the gateway's environment, and no shell function", () => {
    const env = { PATH: "/bin", LANG: "C.UTF-8", MCP_GATEWAY_SECRET: "s".repeat(40), AWS_SECRET_ACCESS_KEY: "k", TZ: "() { :; }", TMPDIR: "" };
    expect(inheritedEnvironment(env)).toStrictEqual({ PATH: "/bin", LANG: "C.UTF-8" });
    expect(load([], env).environment).toStrictEqual({ PATH: "/bin", LANG: "C.UTF-8" });
  });
});
