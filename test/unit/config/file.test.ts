import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/config/errors.js";
import { readUpstreamsFile } from "../../../src/config/file.js";
import { PUBLIC_URL, SOURCE, SECRETS, parse, one, URL_X, refused, refusedEntry, SPEC_EXAMPLE, plain } from "../../support/config-file.js";

describe("parseUpstreamsFile: the documented example", () => {
  it("reads every server into its UpstreamConfig, in file order", () => {
    expect(parse(SPEC_EXAMPLE)).toStrictEqual([
      {
        name: "github",
        path: "/mcp/github",
        title: "GitHub",
        resource: "https://api.githubcopilot.com/mcp/",
        auth: "oauth",
        clientId: "Ov23li…",
        clientSecret: SECRETS.GITHUB_CLIENT_SECRET,
        scope: "repo read:org",
        headers: { "x-mcp-readonly": "true" },
        identityHeaders: false,
        allowUsers: ["octocat"],
        allowOrgs: ["acme"],
      },
      { name: "notion", path: "/mcp/notion", title: "notion", resource: "https://mcp.notion.com/mcp", auth: "detect", ...plain },
      {
        name: "internal",
        path: "/mcp/internal",
        title: "internal",
        resource: "http://10.0.0.5:8080/mcp",
        auth: "static",
        credentials: { authorization: `Bearer ${SECRETS.INTERNAL_TOKEN}` },
        ...plain,
        identityHeaders: true,
      },
      {
        name: "search",
        path: "/mcp/search",
        title: "search",
        resource: "https://search.example.com/mcp",
        auth: "static",
        credentials: { "x-api-key": SECRETS.SEARCH_KEY },
        ...plain,
      },
      { name: "open", path: "/mcp/open", title: "open", resource: "http://127.0.0.1:9000/mcp", auth: "none", ...plain },
    ]);
  });

  it("freezes every server and everything inside it", () => {
    for (const upstream of parse(SPEC_EXAMPLE)) {
      expect(Object.isFrozen(upstream)).toBe(true);
      for (const part of [upstream.headers, upstream.allowUsers, upstream.allowOrgs, upstream.credentials ?? Object.freeze({})])
        expect(Object.isFrozen(part)).toBe(true);
    }
  });

  it("reads the file from disk, and names a file it cannot read without guessing at its content", () => {
    const dir = mkdtempSync(join(tmpdir(), "gateway-config-file-"));
    try {
      writeFileSync(join(dir, "gateway.json"), SPEC_EXAMPLE);
      expect(readUpstreamsFile(join(dir, "gateway.json"), SECRETS, PUBLIC_URL).map((u) => u.name)).toEqual(["github", "notion", "internal", "search", "open"]);
      expect(() => readUpstreamsFile(join(dir, "missing.json"), SECRETS, PUBLIC_URL)).toThrow(
        new ConfigError(`--config ${join(dir, "missing.json")} cannot be read (ENOENT): give the path of a readable JSON file`),
      );
      expect(() => readUpstreamsFile(dir, SECRETS, PUBLIC_URL)).toThrow(`--config ${dir} cannot be read (EISDIR)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("parseUpstreamsFile: the file and its servers", () => {
  it.each([
    ["an array", "[]"],
    ["a string", '"mcpServers"'],
    ["null", "null"],
  ])("refuses a file that holds %s", (_what, file) => {
    expect(refused(file)).toBe(`${SOURCE}: the file must hold one JSON object: { "mcpServers": { "<name>": { "url": "https://…" } } }`);
  });

  it("refuses an unknown top-level key, naming it", () => {
    expect(refused({ mcpServers: { x: { url: URL_X } }, servers: {} })).toBe(
      `${SOURCE}: the top level: unknown key "servers" (the keys are mcpServers, $schema)`,
    );
  });

  it.each([
    ["missing", {}],
    ["an array", { mcpServers: [{ url: URL_X }] }],
    ["a string", { mcpServers: URL_X }],
  ])("refuses mcpServers %s", (_what, file) => {
    expect(refused(file)).toMatch(new RegExp(`^${SOURCE}: mcpServers must be an object of servers by name`));
  });

  it("takes 1 to 50 servers", () => {
    const servers = (n: number) => ({ mcpServers: Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, { url: URL_X }])) });
    expect(parse(servers(50))).toHaveLength(50);
    expect(refused(servers(51))).toBe(`${SOURCE}: mcpServers holds 51 servers: give 1 to 50`);
    expect(refused(servers(0))).toBe(`${SOURCE}: mcpServers holds 0 servers: give 1 to 50`);
  });

  it("refuses a $schema that is not a string", () => {
    expect(refused({ $schema: 1, mcpServers: { x: { url: URL_X } } })).toContain("$schema must be a string");
  });

  it.each(["a", "0", "github", "my-server_2", "x".repeat(63)])("takes the server name %j and serves it at /mcp/<name>", (name) => {
    expect(parse({ mcpServers: { [name]: { url: URL_X } } })[0]).toMatchObject({ name, path: `/mcp/${name}`, title: name });
  });

  it.each(["Bad Name", "GitHub", "-x", "_x", "a/b", "a.b", "", "ünï"])("refuses the server name %j", (name) => {
    expect(refused({ mcpServers: { [name]: { url: URL_X } } })).toBe(
      `${SOURCE}: mcpServers.${JSON.stringify(name)}: a server name is 1-63 lowercase letters, digits, "-" or "_" (it becomes the path /mcp/<name>)`,
    );
  });

  it("refuses a 64-character server name, showing its first 40", () => {
    expect(refused({ mcpServers: { ["x".repeat(64)]: { url: URL_X } } })).toMatch(new RegExp(`^gateway\\.json: mcpServers\\."x{40}…": a server name is`));
  });

  it("refuses a server that is not an object", () => {
    expect(refused({ mcpServers: { x: URL_X } })).toContain("mcpServers.x must be an object");
  });

  it.each(["allowUser", "clientSecret", "env", "transport"])("refuses the unknown server key %j, naming it and the server", (key) => {
    expect(refusedEntry({ url: URL_X, [key]: ["octocat"] })).toBe(
      `${SOURCE}: mcpServers.x: unknown key "${key}" (the keys are url, type, title, oauth, auth, headers, identityHeaders, allowUsers, allowOrgs)`,
    );
  });

  it.each(["http", "streamable-http", "streamableHttp"])("accepts and ignores type %j", (type) => {
    expect(one({ url: URL_X, type })).toStrictEqual(one({ url: URL_X }));
  });

  it("refuses a server of type sse: only Streamable HTTP servers can be proxied", () => {
    expect(refusedEntry({ url: URL_X, type: "sse" })).toBe(
      `${SOURCE}: mcpServers.x: SSE servers (the 2024-11-05 transport) cannot be proxied: give a Streamable HTTP endpoint as "url", or "command" for a local server`,
    );
  });

  it.each([["websocket"], [1]])("refuses type %j", (type) => {
    expect(refusedEntry({ url: URL_X, type })).toBe(
      `${SOURCE}: mcpServers.x.type must be "http", "streamable-http" or "streamableHttp" for a remote server, or "stdio" with "command" (or be left out)`,
    );
  });

  it("takes a title of up to 100 characters, else the name", () => {
    expect(one({ url: URL_X, title: "T".repeat(100) }).title).toBe("T".repeat(100));
    for (const title of ["", "T".repeat(101), 7])
      expect(refusedEntry({ url: URL_X, title })).toBe(`${SOURCE}: mcpServers.x.title must be a string of 1 to 100 characters`);
  });
});

describe("parseUpstreamsFile: url", () => {
  it.each([
    ["https://MCP.Example.org/mcp", "https://mcp.example.org/mcp"],
    ["http://10.0.0.5:8080/mcp", "http://10.0.0.5:8080/mcp"],
    ["https://example.org", "https://example.org/"],
    ["https://example.org/mcp?tenant=1", "https://example.org/mcp?tenant=1"],
  ])("takes %s as the resource %s", (url, resource) => {
    expect(one({ url }).resource).toBe(resource);
  });

  it("refuses a server without url", () => {
    expect(refusedEntry({ title: "X" })).toBe(`${SOURCE}: mcpServers.x.url is missing: give the server's MCP endpoint, e.g. "url": "https://example.com/mcp"`);
  });

  it.each([["/mcp"], ["example.org/mcp"], ["ftp://example.org/mcp"], ["ws://example.org/mcp"], ["file:///etc/passwd"]])("refuses the url %j", (url) => {
    expect(refusedEntry({ url })).toBe(`${SOURCE}: mcpServers.x.url must be an absolute http(s) URL such as https://example.com/mcp`);
  });

  it.each([[""], [42], [["https://example.org"]]])("refuses the url %j, which is no string", (url) => {
    expect(refusedEntry({ url })).toBe(`${SOURCE}: mcpServers.x.url must be a non-empty string`);
  });

  it.each(["https://example.org/mcp#top", "https://example.org/mcp#"])("refuses the url %s with a fragment", (url) => {
    expect(refusedEntry({ url })).toBe(`${SOURCE}: mcpServers.x.url must not have a #fragment`);
  });
});
