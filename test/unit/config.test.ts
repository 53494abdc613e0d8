import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";
import { helpText } from "../../src/config/options.js";
import { hashPasswordSync, parsePasswordHash, verifyPassword } from "../../src/login/passwords.js";

/** No developer .env and no MCP_GATEWAY_* of the developer's shell: only what a test gives. */
const ENV = { MCP_GATEWAY_ENV_FILE: "/dev/null" };
const RS = ["--upstream-rs", "https://upstream.example/mcp"];

const load = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, { ...ENV, ...env });
const refused = (argv: string[], env: Record<string, string> = {}): string => {
  try {
    load(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`loadConfig(${JSON.stringify(argv)}) was accepted`);
};

const dir = mkdtempSync(join(tmpdir(), "gateway-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const envFile = (text: string): string => {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.env`);
  writeFileSync(path, text);
  return path;
};

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

describe("loadConfig: the proxy", () => {
  it("applies the defaults", () => {
    expect(load(RS).proxy).toEqual({ upstreamTimeout: 120, sseHeartbeat: 15, shutdownGrace: 10, maxStreamsPerGrant: 20, maxStreamsPerAddress: 200 });
    expect(Object.isFrozen(load(RS).proxy)).toBe(true);
  });

  it("takes the numbers from flags and from the environment", () => {
    expect(load([...RS, "--upstream-timeout", "30", "--sse-heartbeat", "0", "--shutdown-grace", "0"]).proxy).toMatchObject({
      upstreamTimeout: 30,
      sseHeartbeat: 0,
      shutdownGrace: 0,
    });
    const env = { MCP_GATEWAY_UPSTREAM_TIMEOUT: "5", MCP_GATEWAY_SSE_HEARTBEAT: "25", MCP_GATEWAY_SHUTDOWN_GRACE: "60" };
    expect(load(RS, env).proxy).toMatchObject({ upstreamTimeout: 5, sseHeartbeat: 25, shutdownGrace: 60 });
  });

  it.each([
    ["--upstream-timeout", "0"],
    ["--upstream-timeout", "86401"],
    ["--sse-heartbeat", "-1"],
    ["--sse-heartbeat", "3601"],
    ["--shutdown-grace", "3601"],
    ["--shutdown-grace", "1.5"],
    ["--upstream-timeout", "soon"],
  ])("refuses %s=%s, naming the flag and the range", (flag, value) => {
    const message = refused([...RS, `${flag}=${value}`]);
    expect(message).toMatch(new RegExp(`^${flag} \\(MCP_GATEWAY_`));
    expect(message).toMatch(/give a whole number from \d+ to \d+$/);
  });

  it("takes repeated --upstream-header, names lower-cased, values as given", () => {
    const headers = load([...RS, "--upstream-header", "X-MCP-Readonly: true", "--upstream-header", "X-MCP-Toolsets:repos,issues"]).upstreams[0]!.headers;
    expect(headers).toEqual({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos,issues" });
  });

  it("takes MCP_GATEWAY_UPSTREAM_HEADERS one per line, and flags over it", () => {
    const env = { MCP_GATEWAY_UPSTREAM_HEADERS: "X-MCP-Readonly: true\r\n\nX-MCP-Toolsets: repos\n" };
    expect(load(RS, env).upstreams[0]!.headers).toEqual({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos" });
    expect(load([...RS, "--upstream-header", "X-MCP-Lockdown: true"], env).upstreams[0]!.headers).toEqual({ "x-mcp-lockdown": "true" });
  });

  it.each([
    ["no colon", "X-MCP-Readonly true"],
    ["no name", ": true"],
    ["a space in the name", "X MCP: true"],
    ["a line break in the value", "X-MCP-Readonly: true\nfalse"],
    ["a CR in the value", "X-MCP-Readonly: tr\rue"],
    ["a NUL in the value", "X-MCP-Readonly: tr\0ue"],
  ])("refuses an --upstream-header with %s, showing the form to use", (_what, line) => {
    const message = refused([...RS, "--upstream-header", line]);
    expect(message).toContain("--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS)");
    expect(message).toContain("'Name: value'");
    expect(message).not.toContain("\n");
  });

  it.each([
    ["Authorization: Bearer s3cr3t-value"],
    ["host: evil.example"],
    ["Content-Length: 0"],
    ["Transfer-Encoding: chunked"],
    ["Connection: close"],
    ["X-Forwarded-User: root"],
  ])("refuses --upstream-header %j, a header the gateway sets itself, without showing the value", (line) => {
    const [name, value] = line.split(": ") as [string, string];
    const message = refused([...RS, "--upstream-header", line]);
    expect(message).toMatch(new RegExp(`^--upstream-header \\(MCP_GATEWAY_UPSTREAM_HEADERS\\): ${name} is set by the gateway`));
    expect(message).not.toContain(value);
  });

  it("reads --config, expanding ${VAR} from the environment and from the env file", () => {
    const file = join(dir, "gateway.json");
    const server = (name: string, variable: string) => ({ url: `https://${name}.example/mcp`, auth: { bearer: `\${${variable}}` } });
    writeFileSync(file, JSON.stringify({ mcpServers: { a: server("a", "FROM_ENV"), b: server("b", "FROM_FILE") } }));
    const env = envFile("FROM_FILE=file-token\nFROM_ENV=loses-to-the-environment\n");
    const config = load(["--config", file, "--env-file", env], { FROM_ENV: "env-token" });
    expect(config.upstreams.map((u) => [u.path, u.resource, u.credentials])).toEqual([
      ["/mcp/a", "https://a.example/mcp", { authorization: "Bearer env-token" }],
      ["/mcp/b", "https://b.example/mcp", { authorization: "Bearer file-token" }],
    ]);
    expect(refused(["demo", "--config", file, "--env-file", env])).toMatch(/^--config \(MCP_GATEWAY_CONFIG\) is not for the demo/);
  });

  it("refuses --config together with an --upstream-* flag", () => {
    expect(refused([...RS, "--config", "gateway.json"])).toBe(
      "--config (MCP_GATEWAY_CONFIG) and --upstream-rs (MCP_GATEWAY_UPSTREAM_RS) do not go together: give upstreams either in the config file or with the --upstream-* flags",
    );
  });
});

describe("loadConfig: secrets", () => {
  it.each([
    ["--password", "hunter2", "MCP_GATEWAY_PASSWORD"],
    ["--password=hunter2", undefined, "MCP_GATEWAY_PASSWORD"],
    ["--secret", "0123456789abcdef0123456789abcdef", "MCP_GATEWAY_SECRET"],
    ["--previous-secrets", "hunter2".repeat(5), "MCP_GATEWAY_PREVIOUS_SECRETS"],
    [`--previous-secrets=${"hunter2".repeat(5)}`, undefined, "MCP_GATEWAY_PREVIOUS_SECRETS"],
  ])("refuses %s on the command line and names %s", (flag, value, variable) => {
    const message = refused([...RS, flag, ...(value === undefined ? [] : [value])], { MCP_GATEWAY_PASSWORD: "from-env-password" });
    expect(message).toContain(variable);
    expect(message).not.toContain("hunter2");
  });

  it("refuses a short MCP_GATEWAY_SECRET", () => {
    expect(refused(RS, { MCP_GATEWAY_SECRET: "x".repeat(31) })).toContain("MCP_GATEWAY_SECRET");
    expect(load(RS, { MCP_GATEWAY_SECRET: "x".repeat(32) }).secret).toBe("x".repeat(32));
  });

  it("reads MCP_GATEWAY_PREVIOUS_SECRETS as a comma-separated list, trimmed", () => {
    const [a, b] = ["a".repeat(32), "b".repeat(40)];
    expect(load(RS, { MCP_GATEWAY_PREVIOUS_SECRETS: ` ${a} ,, ${b},` }).previousSecrets).toEqual([a, b]);
    expect(load(RS, { MCP_GATEWAY_PREVIOUS_SECRETS: a }).previousSecrets).toEqual([a]);
  });

  it("refuses a short value in MCP_GATEWAY_PREVIOUS_SECRETS without repeating it", () => {
    const message = refused(RS, { MCP_GATEWAY_PREVIOUS_SECRETS: `${"a".repeat(32)},short-hunter2` });
    expect(message).toContain("MCP_GATEWAY_PREVIOUS_SECRETS");
    expect(message).not.toContain("hunter2");
  });

  it("hashes MCP_GATEWAY_PASSWORD at start and keeps no plain copy", async () => {
    const config = load(RS, { MCP_GATEWAY_USERNAME: "alice", MCP_GATEWAY_PASSWORD: "pw from env" });
    expect(config.login).toEqual({
      users: [{ username: "alice", passwordHash: expect.stringMatching(/^scrypt\$ln=14,r=8,p=1\$/) }],
      passwordSource: "environment",
    });
    expect(JSON.stringify(config)).not.toContain("pw from env");
    expect(await verifyPassword("pw from env", parsePasswordHash(config.login.users[0]!.passwordHash)!)).toBe(true);
  });

  it("generates a strong password, a different one each time, when none is set, and keeps it only to print once", async () => {
    const a = load(RS).login;
    const b = load(RS).login;
    expect(a.passwordSource).toBe("generated");
    expect(a.generatedPassword!.length).toBeGreaterThanOrEqual(20);
    expect(a.generatedPassword).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(a.generatedPassword).not.toBe(b.generatedPassword);
    expect(await verifyPassword(a.generatedPassword!, parsePasswordHash(a.users[0]!.passwordHash)!)).toBe(true);
  });

  it("treats an empty MCP_GATEWAY_PASSWORD as unset", () => {
    expect(load(RS, { MCP_GATEWAY_PASSWORD: "" }).login.passwordSource).toBe("generated");
  });
});

describe("loadConfig: gateway users", () => {
  const HASH = hashPasswordSync("s3cret", { ln: 10, r: 8, p: 1 });
  const usersFile = (text: string) => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.users`);
    writeFileSync(path, text);
    return path;
  };

  it("takes MCP_GATEWAY_PASSWORD_HASH for MCP_GATEWAY_USERNAME", () => {
    expect(load(RS, { MCP_GATEWAY_USERNAME: "alice", MCP_GATEWAY_PASSWORD_HASH: HASH }).login).toEqual({
      users: [{ username: "alice", passwordHash: HASH }],
      passwordSource: "hash",
    });
  });

  it("refuses a malformed MCP_GATEWAY_PASSWORD_HASH without repeating it, and --password-hash on the command line", () => {
    const message = refused(RS, { MCP_GATEWAY_PASSWORD_HASH: "hunter2hunter2" });
    expect(message).toContain("MCP_GATEWAY_PASSWORD_HASH");
    expect(message).toContain("hash-password");
    expect(message).not.toContain("hunter2");
    expect(refused([...RS, "--password-hash", HASH])).toContain("is not a flag");
    expect(refused(RS, { MCP_GATEWAY_PASSWORD_HASH: HASH.replace("ln=10", "ln=30") })).toContain("MCP_GATEWAY_PASSWORD_HASH");
  });

  it("reads a users file, skipping comments and blank lines", () => {
    const path = usersFile(`# team\n\nalice:${HASH}\r\n  bob:${HASH}  \n# carol:disabled\n`);
    const login = load([...RS, "--users-file", path]).login;
    expect(login).toEqual({
      users: [
        { username: "alice", passwordHash: HASH },
        { username: "bob", passwordHash: HASH },
      ],
      passwordSource: "users-file",
      usersFile: path,
    });
    expect(load(RS, { MCP_GATEWAY_USERS_FILE: path }).login.users).toHaveLength(2);
  });

  it.each([
    ["a line without a colon", `alice:${HASH}\nbob ${HASH}\n`, 2],
    ["a plain password instead of a hash", `alice:${HASH}\n\nbob:hunter2hunter2\n`, 3],
    ["an empty user name", `:${HASH}\n`, 1],
    ["the same user twice", `alice:${HASH}\nalice:${HASH}\n`, 2],
  ])("refuses a users file with %s, naming the file and line and never the hash", (_what, text, line) => {
    const path = usersFile(text);
    const message = refused([...RS, "--users-file", path]);
    expect(message).toContain(`--users-file ${path} line ${line}`);
    expect(message).not.toContain("hunter2");
    expect(message).not.toContain(HASH.split("$")[3]);
  });

  it("refuses an empty or unreadable users file", () => {
    expect(refused([...RS, "--users-file", usersFile("# nobody\n")])).toContain("lists no users");
    expect(refused([...RS, "--users-file", join(dir, "missing.users")])).toContain("cannot be read");
  });

  it("refuses two password sources at once, and a user name beside a users file", () => {
    const path = usersFile(`alice:${HASH}\n`);
    expect(refused(RS, { MCP_GATEWAY_PASSWORD: "pw", MCP_GATEWAY_PASSWORD_HASH: HASH })).toContain("only one of");
    expect(refused([...RS, "--users-file", path], { MCP_GATEWAY_PASSWORD: "pw" })).toContain("only one of");
    expect(refused([...RS, "--users-file", path, "--username", "bob"])).toContain("--username");
  });

  it("parses hash-password as a command that needs no other configuration", () => {
    expect(load(["hash-password"]).command).toBe("hash-password");
    expect(helpText()).toMatch(/^\s+hash-password\s/m);
  });
});

describe("loadConfig: --store and --data-dir", () => {
  const HOME = { HOME: "/home/tester" };

  it("defaults to sqlite in ~/.mcp-oauth-gateway, ~ being HOME", () => {
    expect(load(RS, HOME).store).toEqual({ kind: "sqlite", dataDir: "/home/tester/.mcp-oauth-gateway" });
    expect(load([...RS, "--data-dir", "~/state"], HOME).store).toEqual({ kind: "sqlite", dataDir: "/home/tester/state" });
    expect(load(RS, { ...HOME, MCP_GATEWAY_STORE: "" }).store.kind).toBe("sqlite"); // empty is unset
  });

  it("defaults to memory for demo, which can still choose sqlite", () => {
    expect(load(["demo"], HOME).store).toEqual({ kind: "memory" });
    expect(load(["demo", "--store", "sqlite"], HOME).store).toEqual({ kind: "sqlite", dataDir: "/home/tester/.mcp-oauth-gateway" });
  });

  it("takes --store memory, and the store from MCP_GATEWAY_STORE", () => {
    expect(load([...RS, "--store", "memory"]).store).toEqual({ kind: "memory" });
    expect(load(RS, { MCP_GATEWAY_STORE: "memory" }).store).toEqual({ kind: "memory" });
  });

  it.each([["redis://127.0.0.1:6379"], ["redis://:p%40ss@redis.internal:6380/2"], ["rediss://user:pw@redis.example.com:6380"]])(
    "takes --store %s as Redis",
    (url) => {
      expect(load([...RS, "--store", url]).store).toEqual({ kind: "redis", url });
    },
  );

  it.each([["postgres://db.example/gw"], ["Sqlite"], ["redis"], ["redis:/127.0.0.1"], ["redis://[bad"]])(
    "refuses --store=%j, naming --store (MCP_GATEWAY_STORE)",
    (value) => {
      expect(refused([...RS, `--store=${value}`])).toMatch(/^--store \(MCP_GATEWAY_STORE\) /);
    },
  );

  it("does not repeat a password in a mistyped Redis URL", () => {
    const message = refused(RS, { MCP_GATEWAY_STORE: "redis:/:hunter2hunter2@redis.internal" });
    expect(message).toContain("--store (MCP_GATEWAY_STORE)");
    expect(message).not.toContain("hunter2hunter2");
  });

  it("refuses --data-dir with a Redis or memory store, naming --data-dir", () => {
    expect(refused([...RS, "--store", "redis://127.0.0.1", "--data-dir", "/var/lib/gw"])).toContain("--data-dir (MCP_GATEWAY_DATA_DIR)");
    expect(refused([...RS, "--store", "memory", "--data-dir", "/var/lib/gw"])).toContain("--data-dir (MCP_GATEWAY_DATA_DIR)");
    expect(refused(RS, { MCP_GATEWAY_STORE: "redis://127.0.0.1", MCP_GATEWAY_DATA_DIR: "/var/lib/gw" })).toContain("--data-dir");
  });

  it("resolves a relative --data-dir against the working directory", () => {
    const store = load([...RS, "--data-dir", "state/gw"]).store;
    expect(store).toEqual({ kind: "sqlite", dataDir: resolve("state/gw") });
    expect(load([...RS, "--data-dir", "/srv/gw"]).store).toEqual({ kind: "sqlite", dataDir: "/srv/gw" });
    expect(load([...RS, "--data-dir", "/srv/gw/"]).store).toEqual({ kind: "sqlite", dataDir: "/srv/gw" });
  });
});

describe("loadConfig: --trust-proxy", () => {
  it.each([
    [undefined, false],
    ["false", false],
    ["true", true],
    ["1", 1],
    ["2", 2],
    ["loopback", "loopback"],
    ["10.0.0.0/8, 192.168.1.7", "10.0.0.0/8, 192.168.1.7"],
  ])("takes --trust-proxy %j as %j", (value, expected) => {
    expect(load([...RS, ...(value === undefined ? [] : ["--trust-proxy", value])]).trustProxy).toEqual(expected);
  });

  it("takes it from MCP_GATEWAY_TRUST_PROXY", () => {
    expect(load(RS, { MCP_GATEWAY_TRUST_PROXY: "uniquelocal" }).trustProxy).toBe("uniquelocal");
  });
});

describe("helpText and --help", () => {
  /** The flags of DESIGN §2, plus the ones config adds, each with its variable. */
  const FLAGS = [
    "port",
    "host",
    "public-url",
    "upstream-rs",
    "upstream-as",
    "upstream-client-id",
    "upstream-client-secret",
    "upstream-authorize-endpoint",
    "upstream-token-endpoint",
    "upstream-scope",
    "access-token-ttl",
    "refresh-token-ttl",
    "env-file",
    "username",
    "store",
    "data-dir",
    "trust-proxy",
    "upstream-header",
    "upstream-timeout",
    "sse-heartbeat",
    "shutdown-grace",
    "config",
  ];
  const variable = (flag: string) => `MCP_GATEWAY_${flag.toUpperCase().replace(/-/g, "_")}`;

  it.each(FLAGS)("lists --%s with its variable on the same line", (flag) => {
    const line = helpText()
      .split("\n")
      .find((l) => l.trimStart().startsWith(`--${flag} `));
    expect(line, `--${flag} missing from --help`).toBeDefined();
    expect(line).toContain(variable(flag));
  });

  it("lists the environment-only secrets as such", () => {
    for (const name of ["MCP_GATEWAY_PASSWORD", "MCP_GATEWAY_SECRET", "MCP_GATEWAY_PREVIOUS_SECRETS"]) {
      const line = helpText()
        .split("\n")
        .find((l) => l.includes(name));
      expect(line).toMatch(/\(env only\)/);
    }
  });

  it("lists the demo command, --help and --version", () => {
    expect(helpText()).toMatch(/^\s+demo\s/m);
    expect(helpText()).toMatch(/^\s+--help\s/m);
    expect(helpText()).toMatch(/^\s+--version\s/m);
  });

  it("is what --help and -h ask for, before any validation", () => {
    expect(load(["--help"]).command).toBe("help");
    expect(load(["-h", "--port", "abc"]).command).toBe("help");
    expect(load(["--version"]).command).toBe("version");
  });
});
