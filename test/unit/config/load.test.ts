import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePasswordHash, verifyPassword } from "../../../src/login/passwords.js";
import { loadConfig } from "../../../src/config/load.js";
import { RS, load, refused, scratch } from "../../support/config-load.js";

const { dir, envFile } = scratch();

describe("loadConfig: where values come from", () => {
  it("takes a flag over the environment over the env file", () => {
    const file = envFile("MCP_GATEWAY_PORT=7001\nMCP_GATEWAY_HOST=10.0.0.1\nMCP_GATEWAY_USERNAME=from-file\n");
    const config = load([...RS, "--env-file", file, "--port", "7003"], { MCP_GATEWAY_PORT: "7002", MCP_GATEWAY_HOST: "10.0.0.2" });
    expect(config.port).toBe(7003);
    expect(config.host).toBe("10.0.0.2");
    expect(config.login.users[0]!.username).toBe("from-file");
  });

  it("reads the env file named by MCP_GATEWAY_ENV_FILE", () => {
    const file = envFile('MCP_GATEWAY_UPSTREAM_RS="https://from-file.example/mcp"\n');
    expect(loadConfig([], { MCP_GATEWAY_ENV_FILE: file }).upstreams[0]!.resource).toBe("https://from-file.example/mcp");
  });

  it("takes secrets from the env file", async () => {
    const file = envFile("MCP_GATEWAY_PASSWORD=file-password-long-enough\nMCP_GATEWAY_SECRET=0123456789abcdef0123456789abcdef\n");
    const config = load([...RS, "--env-file", file]);
    expect(config.login).toMatchObject({ users: [{ username: "admin" }], passwordSource: "environment" });
    expect(await verifyPassword("file-password-long-enough", parsePasswordHash(config.login.users[0]!.passwordHash)!)).toBe(true);
    expect(config.secret).toBe("0123456789abcdef0123456789abcdef");
  });

  it("refuses an --env-file it cannot read", () => {
    expect(refused([...RS, "--env-file", join(dir, "missing.env")])).toMatch(/--env-file .*missing\.env/);
  });

  it("applies the defaults", () => {
    const config = load(RS);
    expect(config).toMatchObject({
      command: "serve",
      port: 8002,
      host: "127.0.0.1",
      publicUrl: "http://localhost:8002",
      accessTokenTtl: 3600,
      refreshTokenTtl: 2_592_000,
      grantLifetime: 7_776_000,
      proxy: { maxStreamsPerGrant: 20, maxStreamsPerAddress: 200 },
    });
    expect(config.login.users.map((u) => u.username)).toEqual(["admin"]);
    expect(config.secret).toBeUndefined();
    expect(config.previousSecrets).toEqual([]);
    expect(config.trustProxy).toBe(false);
    expect(config.upstreams).toEqual([
      {
        name: "",
        path: "/mcp",
        title: "upstream.example",
        resource: "https://upstream.example/mcp",
        auth: "oauth",
        headers: {},
        identityHeaders: false,
        allowUsers: [],
        allowOrgs: [],
      },
    ]);
    expect(load([...RS, "--port", "9100"]).publicUrl).toBe("http://localhost:9100");
  });

  it("reads the revoke command's users and clients, and refuses them elsewhere", () => {
    expect(load(["revoke", ...RS, "--user", "alice", "--user", "bob", "--client", "c1"]).revoke).toEqual({ users: ["alice", "bob"], clients: ["c1"] });
    expect(refused(["revoke", ...RS])).toMatch(/revoke needs --user NAME or --client ID/);
    expect(refused([...RS, "--user", "alice"])).toMatch(/--user and --client are for the revoke command/);
  });

  it("reads --upstream-scope-max as a space-separated list, with a default scope inside it (MC34)", () => {
    expect(load([...RS, "--upstream-scope", "repo", "--upstream-scope-max", "repo, read:org"]).upstreams[0]!.scopeMax).toBe("repo read:org");
    expect(refused([...RS, "--upstream-scope-max", "repo"])).toMatch(/--upstream-scope-max .* needs --upstream-scope/);
    expect(refused([...RS, "--upstream-scope", "repo admin:org", "--upstream-scope-max", "repo"])).toMatch(/asks for "admin:org", which --upstream-scope-max/);
  });

  it("returns a frozen object", () => {
    const config = load(RS);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.upstreams)).toBe(true);
    expect(Object.isFrozen(config.upstreams[0])).toBe(true);
    expect(Object.isFrozen(config.upstreams[0]!.headers)).toBe(true);
    expect(Object.isFrozen(config.login)).toBe(true);
    expect(Object.isFrozen(config.login.users)).toBe(true);
    expect(Object.isFrozen(config.store)).toBe(true);
    expect(Object.isFrozen(config.previousSecrets)).toBe(true);
  });

  it("normalises --upstream-scope to space-separated", () => {
    expect(load([...RS, "--upstream-scope", "repo, read:user  gist"]).upstreams[0]!.scope).toBe("repo read:user gist");
  });
});

describe("loadConfig: --public-url", () => {
  it.each([
    ["https://gw.example.com/", "https://gw.example.com"],
    ["https://GW.example.com:443", "https://gw.example.com"],
    ["https://gw.example.com:8443/", "https://gw.example.com:8443"],
    ["http://localhost:8002/", "http://localhost:8002"],
    ["http://127.0.0.1:9000", "http://127.0.0.1:9000"],
    ["http://[::1]:9000/", "http://[::1]:9000"],
  ])("accepts %s as %s", (given, expected) => {
    expect(load([...RS, "--public-url", given]).publicUrl).toBe(expected);
  });

  it.each([
    ["a path", "https://gw.example.com/gateway"],
    ["a query", "https://gw.example.com/?x=1"],
    ["a fragment", "https://gw.example.com/#top"],
    ["plain http on a public host", "http://gw.example.com"],
    ["plain http on a host that only starts like localhost", "http://localhost.evil.example"],
    ["a non-http scheme", "ftp://gw.example.com"],
    ["no URL at all", "gw.example.com"],
  ])("refuses %s", (_what, given) => {
    expect(refused([...RS, "--public-url", given])).toContain("--public-url");
  });
});

describe("loadConfig: upstream", () => {
  it("requires --upstream-rs, naming the flag and the fix", () => {
    const message = refused([]);
    expect(message).toContain("--upstream-rs");
    expect(message).toContain("demo");
  });

  it("does not require --upstream-rs for demo", () => {
    expect(load(["demo"]).command).toBe("demo");
  });

  it("refuses an --upstream-rs that is not an http(s) URL", () => {
    expect(refused(["--upstream-rs", "not a url"])).toContain("--upstream-rs");
    expect(refused(["--upstream-rs", "file:///etc/passwd"])).toContain("--upstream-rs");
  });

  it("takes the two endpoint flags together", () => {
    const config = load([...RS, "--upstream-authorize-endpoint", "https://as.example/authorize", "--upstream-token-endpoint", "https://as.example/token"]);
    expect(config.upstreams[0]).toMatchObject({ authorizationEndpoint: "https://as.example/authorize", tokenEndpoint: "https://as.example/token" });
  });

  it.each([["--upstream-authorize-endpoint"], ["--upstream-token-endpoint"]])("refuses %s alone", (flag) => {
    const message = refused([...RS, flag, "https://as.example/x"]);
    expect(message).toContain("--upstream-authorize-endpoint");
    expect(message).toContain("--upstream-token-endpoint");
  });

  it("refuses a client secret without a client id", () => {
    expect(refused(RS, { MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: "s" })).toContain("--upstream-client-id");
  });

  it("refuses an unknown command and a stray argument", () => {
    expect(refused(["serve-all"])).toContain("serve-all");
    expect(refused(["demo", "extra"])).toContain("extra");
  });
});

describe("loadConfig: numbers", () => {
  it.each([["abc"], ["-1"], ["65536"], ["80.5"], [" 80"], ["0x50"]])("refuses --port=%j, naming the flag", (port) => {
    expect(refused([...RS, `--port=${port}`])).toMatch(/^--port /);
  });

  it("refuses a flag whose value is missing, in one line naming the flag", () => {
    const message = refused([...RS, "--port"]);
    expect(message).toContain("--port");
    expect(message).not.toContain("\n");
  });

  it("refuses a flag followed by something dash-like, in one line naming the flag", () => {
    const message = refused([...RS, "--port", "-1"]);
    expect(message).toContain("--port");
    expect(message).not.toContain("\n");
  });

  it("accepts --port 0 (an ephemeral port)", () => {
    expect(load([...RS, "--port", "0"]).port).toBe(0);
  });

  it("keeps token lifetimes within bounds", () => {
    expect(refused([...RS, "--access-token-ttl", "10"])).toContain("--access-token-ttl");
    expect(refused([...RS, "--refresh-token-ttl", "999999999"])).toContain("--refresh-token-ttl");
    expect(load([...RS, "--access-token-ttl", "600"]).accessTokenTtl).toBe(600);
  });
});

describe("loadConfig: the login command", () => {
  it("reads the URL and its own flags, and none of the gateway's", () => {
    const config = loadConfig(
      ["login", "https://gw.example/mcp/github", "--write-config", "/tmp/mcp.json", "--name", "gh", "--client-id", "c1", "--scope", "repo"],
      {},
    );
    expect(config.command).toBe("login");
    expect(config.deviceLogin).toEqual({ url: "https://gw.example/mcp/github", writeConfig: "/tmp/mcp.json", name: "gh", clientId: "c1", scope: "repo" });
  });

  it.each([
    [["login"], "login needs the MCP server's URL"],
    [["login", "ftp://gw.example/mcp"], "is not an http(s) URL"],
    [["login", "https://gw.example/mcp", "extra"], 'unexpected argument "extra"'],
    [["login", "https://gw.example/mcp", "--name", "gh"], "--name names the entry --write-config writes"],
    [["login", "https://gw.example/mcp", "--port", "1"], "Unknown option '--port'"],
  ])("refuses %j with a message naming the fix", (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(message);
  });

  it("shows the help for login --help", () => {
    expect(loadConfig(["login", "--help"], {}).command).toBe("help");
  });
});
