import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { configRefusal } from "../support/config-refusal.js";
import { ConfigError } from "../../src/config/errors.js";
import { parseUpstreamsFile, readUpstreamsFile } from "../../src/config/file.js";
import { isFirstPartyHost, isSiteLocalHost } from "../../src/hosts.js";

const PUBLIC_URL = "https://gw.example.com";
const SOURCE = "gateway.json";

/** Distinctive secrets: no error message may show one of them, nor any five characters of one. */
const SECRETS = {
  GITHUB_CLIENT_SECRET: "Gq7Zp2Xv",
  INTERNAL_TOKEN: "Bw4Kd9Tm",
  SEARCH_KEY: "Kr8Lf3Yc",
  HEADER_SECRET: "Hv5Nj6Ps",
  SECRET_URL: "https://zk4hq9w.example/mcp",
};
const LITERAL_SECRET = "Lc2Gu8Ra";
const SECRET_PARTS = [SECRETS.GITHUB_CLIENT_SECRET, SECRETS.INTERNAL_TOKEN, SECRETS.SEARCH_KEY, SECRETS.HEADER_SECRET, "zk4hq9w", LITERAL_SECRET].flatMap((s) =>
  Array.from({ length: s.length - 4 }, (_, i) => s.slice(i, i + 5).toLowerCase()),
);

type Json = Record<string, unknown>;
const text = (file: unknown): string => (typeof file === "string" ? file : JSON.stringify(file, null, 2));
const parse = (file: unknown, env: Record<string, string> = SECRETS) => parseUpstreamsFile(text(file), SOURCE, env, PUBLIC_URL);
const one = (entry: Json, env?: Record<string, string>) => parse({ mcpServers: { x: entry } }, env)[0]!;
const URL_X = "https://mcp.example.org/mcp";

/** The message of the ConfigError `parse` throws, one line and without a secret; fails the test when the file is accepted. */
const refused = (file: unknown, env: Record<string, string> = SECRETS): string => configRefusal(() => parse(file, env), SECRET_PARTS);
const refusedEntry = (entry: Json, env?: Record<string, string>) => refused({ mcpServers: { x: entry } }, env);

/** The example of /tmp/spec6.md ("The config file"), byte for byte. */
const SPEC_EXAMPLE = `{
  "$schema": "./docs/gateway.schema.json",
  "mcpServers": {
    "github": {
      "url": "https://api.githubcopilot.com/mcp/",
      "title": "GitHub",
      "oauth": { "clientId": "Ov23li…", "clientSecret": "\${GITHUB_CLIENT_SECRET}", "scope": "repo read:org" },
      "headers": { "X-MCP-Readonly": "true" },
      "allowUsers": ["octocat"],
      "allowOrgs": ["acme"]
    },
    "notion": { "url": "https://mcp.notion.com/mcp" },
    "internal": { "url": "http://10.0.0.5:8080/mcp", "auth": { "bearer": "\${INTERNAL_TOKEN}" }, "identityHeaders": true },
    "search": { "url": "https://search.example.com/mcp", "auth": { "header": "X-API-Key", "value": "\${SEARCH_KEY}" } },
    "open": { "url": "http://127.0.0.1:9000/mcp", "auth": "none" }
  }
}`;

const plain = { headers: {}, identityHeaders: false, allowUsers: [], allowOrgs: [] };

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

  it.each([
    ["sse", { url: URL_X, type: "sse" }],
    ["stdio", { type: "stdio", command: "npx", args: ["server"] }],
    ["a command", { command: "npx", args: ["-y", "@modelcontextprotocol/server-everything"], env: { TOKEN: "x" } }],
  ])("refuses a server of %s: only remote Streamable HTTP servers can be proxied", (_what, entry) => {
    expect(refusedEntry(entry)).toBe(
      `${SOURCE}: mcpServers.x: only remote Streamable HTTP servers can be proxied, not "command" or "sse"/"stdio" ones: give the server's MCP endpoint as "url"`,
    );
  });

  it.each([["websocket"], [1]])("refuses type %j", (type) => {
    expect(refusedEntry({ url: URL_X, type })).toBe(`${SOURCE}: mcpServers.x.type must be "http", "streamable-http" or "streamableHttp" (or be left out)`);
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

describe("parseUpstreamsFile: oauth", () => {
  it("copies every field, normalising URLs and removing apiUrl's trailing slash", () => {
    const oauth = {
      clientId: "Iv1.abc",
      clientSecret: "${GITHUB_CLIENT_SECRET}",
      scope: "repo",
      issuer: "https://ghe.example.com/",
      authorizationEndpoint: "https://ghe.example.com/login/oauth/authorize",
      tokenEndpoint: "https://ghe.example.com/login/oauth/access_token",
      apiUrl: "https://ghe.example.com/api/v3/",
    };
    expect(one({ url: URL_X, oauth })).toStrictEqual({
      name: "x",
      path: "/mcp/x",
      title: "x",
      resource: URL_X,
      auth: "oauth",
      ...oauth,
      clientSecret: SECRETS.GITHUB_CLIENT_SECRET,
      apiUrl: "https://ghe.example.com/api/v3",
      ...plain,
    });
  });

  it("makes an empty oauth object mean oauth with discovery and registration", () => {
    expect(one({ url: URL_X, oauth: {} })).toStrictEqual({ name: "x", path: "/mcp/x", title: "x", resource: URL_X, auth: "oauth", ...plain });
  });

  it.each([
    ["repo read:org", "repo read:org"],
    ["repo,read:org", "repo read:org"],
    [" repo ,  read:org ", "repo read:org"],
    [["repo", "read:org"], "repo read:org"],
    [["repo read:org", "user"], "repo read:org user"],
  ])("normalises scope %j to %j", (scope, expected) => {
    expect(one({ url: URL_X, oauth: { scope } }).scope).toBe(expected);
  });

  it.each([[""], [[]], [["repo", 1]], [["repo", ""]], [{ repo: true }], [" , "]])("refuses scope %j", (scope) => {
    expect(refusedEntry({ url: URL_X, oauth: { scope } })).toMatch(/^gateway\.json: mcpServers\.x\.oauth\.scope (must be a string|names no scope)/);
  });

  it("takes scopeMax only with a default scope inside it (MC34)", () => {
    expect(refusedEntry({ url: URL_X, oauth: { scopeMax: "repo" } })).toMatch(/mcpServers\.x\.oauth\.scopeMax needs mcpServers\.x\.oauth\.scope/);
    expect(refusedEntry({ url: URL_X, oauth: { scope: "repo gist", scopeMax: ["repo"] } })).toMatch(/asks for "gist", which .*scopeMax does not allow/);
  });

  it("refuses an unknown oauth key, naming it", () => {
    expect(refusedEntry({ url: URL_X, oauth: { client_id: "abc" } })).toBe(
      `${SOURCE}: mcpServers.x.oauth: unknown key "client_id" (the keys are clientId, clientSecret, scope, scopeMax, issuer, authorizationEndpoint, tokenEndpoint, apiUrl, privateKey, tokenEndpointAuthMethod)`,
    );
  });

  it.each([[{ authorizationEndpoint: "https://as.example/authorize" }], [{ tokenEndpoint: "https://as.example/token" }]])(
    "refuses one endpoint without the other: %j",
    (oauth) => {
      expect(refusedEntry({ url: URL_X, oauth })).toBe(
        `${SOURCE}: mcpServers.x.oauth.authorizationEndpoint and mcpServers.x.oauth.tokenEndpoint go together: give both to skip discovery, or neither`,
      );
    },
  );

  it("refuses clientSecret without clientId", () => {
    expect(refusedEntry({ url: URL_X, oauth: { clientSecret: LITERAL_SECRET } })).toBe(
      `${SOURCE}: mcpServers.x.oauth.clientSecret needs mcpServers.x.oauth.clientId: give the id of the client the secret belongs to`,
    );
  });

  it.each(["issuer", "authorizationEndpoint", "apiUrl"])("checks oauth.%s like url", (key) => {
    const oauth = { tokenEndpoint: "https://as.example/token", authorizationEndpoint: "https://as.example/authorize", [key]: "as.example" };
    expect(refusedEntry({ url: URL_X, oauth })).toBe(`${SOURCE}: mcpServers.x.oauth.${key} must be an absolute http(s) URL such as https://example.com/mcp`);
  });

  it("refuses a non-object oauth", () => {
    expect(refusedEntry({ url: URL_X, oauth: true })).toContain("mcpServers.x.oauth must be an object");
  });
});

describe("parseUpstreamsFile: auth", () => {
  it("detects when neither oauth nor auth is given", () => {
    expect(one({ url: URL_X }).auth).toBe("detect");
  });

  it('takes "none", a bearer token and a named header', () => {
    expect(one({ url: URL_X, auth: "none" })).toStrictEqual({ name: "x", path: "/mcp/x", title: "x", resource: URL_X, auth: "none", ...plain });
    expect(one({ url: URL_X, auth: { bearer: "tok" } })).toMatchObject({ auth: "static", credentials: { authorization: "Bearer tok" } });
    expect(one({ url: URL_X, auth: { header: "X-API-Key", value: "k" } })).toMatchObject({ auth: "static", credentials: { "x-api-key": "k" } });
    expect(one({ url: URL_X, auth: { header: "Authorization", value: "Basic dXNlcjpwdw==" } }).credentials).toEqual({ authorization: "Basic dXNlcjpwdw==" });
  });

  it("refuses oauth and auth together", () => {
    expect(refusedEntry({ url: URL_X, oauth: {}, auth: "none" })).toBe(
      `${SOURCE}: mcpServers.x: "oauth" and "auth" do not go together: "oauth" signs each user in at the upstream, "auth" sends fixed credentials or none`,
    );
  });

  it.each([["basic"], [""], [true], [["none"]], [{}], [{ header: "X-API-Key" }], [{ value: LITERAL_SECRET }]])("refuses auth %j", (auth) => {
    expect(refusedEntry({ url: URL_X, auth })).toBe(
      `${SOURCE}: mcpServers.x.auth must be "none", { "bearer": "<token>" } or { "header": "<name>", "value": "<value>" }`,
    );
  });

  it.each([
    [{ bearer: LITERAL_SECRET, header: "X-API-Key" }, "header"],
    [{ header: "X-API-Key", value: LITERAL_SECRET, prefix: "Token" }, "prefix"],
  ])("refuses an unknown auth key: %j", (auth, key) => {
    expect(refusedEntry({ url: URL_X, auth })).toMatch(new RegExp(`^gateway\\.json: mcpServers\\.x\\.auth: unknown key "${key}"`));
  });

  it.each(["Host", "content-length", "Connection", "X-Forwarded-User", "Bad Name", "x:y"])("refuses the auth header %j", (header) => {
    expect(refusedEntry({ url: URL_X, auth: { header, value: LITERAL_SECRET } })).toBe(
      `${SOURCE}: mcpServers.x.auth.header is not a header the gateway can send: give a name such as X-API-Key (not Host, Content-Length, a hop-by-hop header or an identity header such as X-Forwarded-User)`,
    );
  });

  it("refuses a credential with a line break", () => {
    expect(refusedEntry({ url: URL_X, auth: { bearer: `${LITERAL_SECRET}\r\nX-Evil: 1` } })).toBe(
      `${SOURCE}: mcpServers.x.auth.bearer holds a line break, a control character or a character beyond Latin-1`,
    );
    expect(refusedEntry({ url: URL_X, auth: { header: "X-API-Key", value: `${LITERAL_SECRET}\n` } })).toBe(
      `${SOURCE}: mcpServers.x.auth.value holds a line break, a control character or a character beyond Latin-1`,
    );
  });
});

describe("parseUpstreamsFile: headers", () => {
  it("lowercases names and keeps values", () => {
    expect(one({ url: URL_X, headers: { "X-MCP-Readonly": "true", "X-Tenant": "${HEADER_SECRET}", "X-Empty": "" } }).headers).toStrictEqual({
      "x-mcp-readonly": "true",
      "x-tenant": SECRETS.HEADER_SECRET,
      "x-empty": "",
    });
  });

  it.each(["Host", "Content-Length", "Connection", "Transfer-Encoding", "X-Forwarded-For", "X-Forwarded-User", "X-Forwarded_User", "Remote-User"])(
    "refuses %s, a header the gateway sets itself",
    (name) => {
      expect(refusedEntry({ url: URL_X, headers: { [name]: LITERAL_SECRET } })).toMatch(
        new RegExp(`^gateway\\.json: mcpServers\\.x\\.headers: ${name} is set by the gateway`),
      );
    },
  );

  it("refuses a name that is not a token and a value with a line break", () => {
    expect(refusedEntry({ url: URL_X, headers: { "Bad Name": "1" } })).toBe(`${SOURCE}: mcpServers.x.headers: "Bad Name" is not a header name`);
    expect(refusedEntry({ url: URL_X, headers: { "X-A": `${LITERAL_SECRET}\r\nX-B: 1` } })).toBe(
      `${SOURCE}: mcpServers.x.headers: the value of X-A holds a line break or NUL`,
    );
  });

  it("refuses, at start, a value no request could carry (undici would refuse every request)", () => {
    for (const value of [`${LITERAL_SECRET}\x01`, `${LITERAL_SECRET}€`])
      expect(refusedEntry({ url: URL_X, headers: { "X-A": value } })).toBe(
        `${SOURCE}: mcpServers.x.headers: the value of X-A holds a control character or a character beyond Latin-1`,
      );
    expect(refusedEntry({ url: URL_X, auth: { header: "X-API-Key", value: `${LITERAL_SECRET}\x7f` } })).toBe(
      `${SOURCE}: mcpServers.x.auth.value holds a line break, a control character or a character beyond Latin-1`,
    );
    expect(one({ url: URL_X, headers: { "X-A": "a\tb é" } }).headers).toStrictEqual({ "x-a": "a\tb é" });
  });

  it("takes Authorization as the static credential an mcpServers file carries there", () => {
    const entry = one({ url: URL_X, headers: { Authorization: `Bearer ${LITERAL_SECRET}`, "X-A": "1" } });
    expect(entry).toMatchObject({ auth: "static", credentials: { authorization: `Bearer ${LITERAL_SECRET}` }, headers: { "x-a": "1" } });
    expect(entry.headers).not.toHaveProperty("authorization");
  });

  it("refuses a value that is no string, the same name twice, and the auth header again", () => {
    expect(refusedEntry({ url: URL_X, headers: { "X-A": 1 } })).toBe(`${SOURCE}: mcpServers.x.headers.X-A must be a string`);
    expect(refusedEntry({ url: URL_X, headers: { "X-A": "1", "x-a": "2" } })).toBe(
      `${SOURCE}: mcpServers.x.headers gives x-a twice (header names ignore case)`,
    );
    expect(refusedEntry({ url: URL_X, auth: { header: "X-API-Key", value: "k" }, headers: { "x-api-key": LITERAL_SECRET } })).toBe(
      `${SOURCE}: mcpServers.x.headers.x-api-key is the header "auth" sends: give it once, in "auth"`,
    );
    expect(refusedEntry({ url: URL_X, headers: ["X-A: 1"] })).toContain("mcpServers.x.headers must be an object of header names and string values");
  });
});

describe("parseUpstreamsFile: identityHeaders", () => {
  it.each([
    [undefined, "https://tools.example.net/mcp", false],
    [false, "https://tools.example.net/mcp", false],
    [true, "https://tools.example.com/mcp", true],
    [true, "http://10.0.0.5:8080/mcp", true],
    [{ thirdParty: true }, "https://tools.example.net/mcp", true],
  ])("%j for %s gives %j", (identityHeaders, url, expected) => {
    expect(one({ url, identityHeaders }).identityHeaders).toBe(expected);
  });

  it("refuses true for a third-party host, naming the host and the opt-in", () => {
    expect(refusedEntry({ url: "https://mcp.notion.com/mcp", identityHeaders: true })).toBe(
      `${SOURCE}: mcpServers.x.identityHeaders: mcp.notion.com is a third-party host: identity headers go only to first-party hosts unless you write "identityHeaders": { "thirdParty": true }`,
    );
  });

  it("does not name a host that came from a variable", () => {
    expect(refusedEntry({ url: "${SECRET_URL}", identityHeaders: true })).toBe(
      `${SOURCE}: mcpServers.x.identityHeaders: the host of mcpServers.x.url is a third-party host: identity headers go only to first-party hosts unless you write "identityHeaders": { "thirdParty": true }`,
    );
  });

  it.each([[{ thirdParty: false }], [{ thirdParty: true, also: 1 }], [{}], ["true"], [1]])("refuses identityHeaders %j", (identityHeaders) => {
    expect(refusedEntry({ url: URL_X, identityHeaders })).toBe(`${SOURCE}: mcpServers.x.identityHeaders must be true, false or { "thirdParty": true }`);
  });
});

describe("isSiteLocalHost (where upstream ASes cannot fetch the gateway's metadata document)", () => {
  it.each(["localhost", "127.0.0.1", "[::1]", "10.1.2.3", "192.168.0.9", "[fd00::1]", "gateway", "gw.corp.internal", "gw.local"])(
    "%s is site-local",
    (host) => {
      expect(isSiteLocalHost(host)).toBe(true);
    },
  );
  it.each(["gw.example.com", "8.8.8.8", "[2001:db8::1]", "internal.example.net"])("%s is not", (host) => {
    expect(isSiteLocalHost(host)).toBe(false);
  });
});

describe("isFirstPartyHost", () => {
  it.each([
    ["localhost", "loopback"],
    ["127.0.0.1", "loopback"],
    ["127.8.9.10", "loopback"],
    ["[::1]", "loopback"],
    ["10.0.0.5", "10/8"],
    ["172.16.0.1", "172.16/12"],
    ["172.31.255.254", "172.16/12"],
    ["192.168.1.20", "192.168/16"],
    ["169.254.169.254", "link-local"],
    ["[fd12:3456::1]", "unique local"],
    ["[fe80::1]", "link-local"],
    ["[::ffff:a00:5]", "IPv4-mapped 10/8"],
    ["mcp-internal", "single label"],
    ["mcp.internal", ".internal"],
    ["printer.local", ".local"],
    ["app.localhost", ".localhost"],
    ["nas.lan", ".lan"],
    ["box.home.arpa", ".home.arpa"],
    ["gw.example.com", "the public host"],
    ["GW.Example.com.", "the public host, any case, rooted"],
    ["example.com", "the public parent domain"],
    ["tools.example.com", "under the public parent domain"],
    ["a.b.example.com", "deep under the public parent domain"],
  ])("counts %s as first-party (%s)", (host) => {
    expect(isFirstPartyHost(host, PUBLIC_URL)).toBe(true);
  });

  it.each([
    ["8.8.8.8", PUBLIC_URL],
    ["172.32.0.1", PUBLIC_URL],
    ["[2001:db8::1]", PUBLIC_URL],
    ["mcp.notion.com", PUBLIC_URL],
    ["example.net", PUBLIC_URL],
    ["notexample.com", PUBLIC_URL],
    ["example.com.evil.net", PUBLIC_URL],
    ["internal.example.net", PUBLIC_URL],
    ["local.example.net", PUBLIC_URL],
    ["other.com", "https://example.com"],
    ["tools.example.com", "http://localhost:8002"],
    ["203.0.113.9", "https://203.0.113.5"],
  ])("counts %s as third-party for the gateway at %s", (host, publicUrl) => {
    expect(isFirstPartyHost(host, publicUrl)).toBe(false);
  });

  it("counts the public host itself when it is an address or has no parent of two labels", () => {
    expect(isFirstPartyHost("203.0.113.5", "https://203.0.113.5")).toBe(true);
    expect(isFirstPartyHost("example.com", "https://example.com")).toBe(true);
    expect(isFirstPartyHost("tools.example.com", "https://example.com")).toBe(false);
  });
});

describe("parseUpstreamsFile: allowUsers and allowOrgs", () => {
  it("takes lists of names", () => {
    expect(one({ url: URL_X, allowUsers: ["octocat", "a@example.com"], allowOrgs: ["acme"] })).toMatchObject({
      allowUsers: ["octocat", "a@example.com"],
      allowOrgs: ["acme"],
    });
    expect(one({ url: URL_X, auth: "none", allowUsers: ["admin"], allowOrgs: [] })).toMatchObject({ allowUsers: ["admin"], allowOrgs: [] });
  });

  it.each([["allowUsers"], ["allowOrgs"]])("refuses %s that is no list of at most 1000 non-empty strings", (key) => {
    expect(refusedEntry({ url: URL_X, [key]: "octocat" })).toBe(`${SOURCE}: mcpServers.x.${key} must be an array of at most 1000 names`);
    expect(refusedEntry({ url: URL_X, [key]: Array.from({ length: 1001 }, (_, i) => `u${i}`) })).toBe(
      `${SOURCE}: mcpServers.x.${key} must be an array of at most 1000 names`,
    );
    expect(refusedEntry({ url: URL_X, [key]: ["octocat", ""] })).toBe(`${SOURCE}: mcpServers.x.${key}[1] must be a non-empty string`);
    expect(refusedEntry({ url: URL_X, [key]: ["octocat", 7] })).toBe(`${SOURCE}: mcpServers.x.${key}[1] must be a non-empty string`);
    expect(one({ url: URL_X, [key]: Array.from({ length: 1000 }, (_, i) => `u${i}`) })[key as "allowUsers"]).toHaveLength(1000);
  });

  it.each([["none"], [{ bearer: "${INTERNAL_TOKEN}" }]])("refuses allowOrgs with auth %j", (auth) => {
    expect(refusedEntry({ url: URL_X, auth, allowOrgs: ["acme"] })).toBe(
      `${SOURCE}: mcpServers.x.allowOrgs needs "oauth": organisation membership is checked with the user's GitHub token, which "auth" servers have not`,
    );
  });
});

describe("parseUpstreamsFile: ${VAR} expansion", () => {
  it("expands variables anywhere in a string value, once", () => {
    const env = { HOST: "mcp.example.org", TENANT: "t1", LOOP: "${HOST}", USER: "octocat" };
    expect(one({ url: "https://${HOST}/mcp?tenant=${TENANT}", title: "${LOOP}", allowUsers: ["${USER}"] }, env)).toMatchObject({
      resource: "https://mcp.example.org/mcp?tenant=t1",
      title: "${HOST}",
      allowUsers: ["octocat"],
    });
  });

  it("reads $${ as a literal ${", () => {
    expect(one({ url: URL_X, headers: { "X-Template": "$${HOST} and $${" } }, { HOST: "h" }).headers).toEqual({ "x-template": "${HOST} and ${" });
  });

  it("names the variable and the JSON path of an unset or empty variable", () => {
    expect(refused(SPEC_EXAMPLE, { INTERNAL_TOKEN: "t", SEARCH_KEY: "k" })).toBe(
      `${SOURCE}: mcpServers.github.oauth.clientSecret needs GITHUB_CLIENT_SECRET, which is not set: set it in the environment or the env file`,
    );
    expect(refused(SPEC_EXAMPLE, { ...SECRETS, SEARCH_KEY: "" })).toBe(
      `${SOURCE}: mcpServers.search.auth.value needs SEARCH_KEY, which is empty: set it in the environment or the env file`,
    );
    expect(refusedEntry({ url: URL_X, allowOrgs: ["acme", "${ORG}"] })).toBe(
      `${SOURCE}: mcpServers.x.allowOrgs[1] needs ORG, which is not set: set it in the environment or the env file`,
    );
  });

  it.each(["${}", "${1X}", "${X", "${A-B}", "pre ${ post"])("refuses %j, a ${ that starts no variable", (value) => {
    expect(refusedEntry({ url: URL_X, headers: { "X-A": value } })).toBe(
      `${SOURCE}: mcpServers.x.headers.X-A has a "\${" that starts no variable: write \${NAME} (letters, digits, _), or $\${ for a literal "\${"`,
    );
  });
});

describe("parseUpstreamsFile: messages never show a secret", () => {
  const BAD_URL_ENV = { ...SECRETS, SECRET_URL: "ftp://zk4hq9w.example/mcp" };
  it.each([
    ["a bearer token with a line break", { url: URL_X, auth: { bearer: "${INTERNAL_TOKEN}\n" } }, SECRETS],
    ["a header value with a line break", { url: URL_X, headers: { "X-A": "${HEADER_SECRET}\r" } }, SECRETS],
    ["a credential for a reserved header", { url: URL_X, auth: { header: "Host", value: "${SEARCH_KEY}" } }, SECRETS],
    ["a header the gateway sets", { url: URL_X, headers: { "X-Forwarded-User": LITERAL_SECRET } }, SECRETS],
    ["a url that is no http(s) URL", { url: "${SECRET_URL}" }, BAD_URL_ENV],
    ["a third-party url from a variable", { url: "${SECRET_URL}", identityHeaders: true }, SECRETS],
    ["a clientSecret without clientId", { url: URL_X, oauth: { clientSecret: "${GITHUB_CLIENT_SECRET}" } }, SECRETS],
    ["a literal clientSecret without clientId", { url: URL_X, oauth: { clientSecret: LITERAL_SECRET } }, SECRETS],
    ["a secret under an unknown key", { url: URL_X, token: LITERAL_SECRET }, SECRETS],
    ["a secret in oauth with an unknown key", { url: URL_X, oauth: { clientId: "a", clientSecret: LITERAL_SECRET, secret: LITERAL_SECRET } }, SECRETS],
    ["oauth and auth together", { url: URL_X, oauth: { clientId: "a", clientSecret: LITERAL_SECRET }, auth: { bearer: LITERAL_SECRET } }, SECRETS],
    ["allowOrgs with a static credential", { url: URL_X, auth: { bearer: LITERAL_SECRET }, allowOrgs: ["acme"] }, SECRETS],
    ["a secret as the title's neighbour", { url: URL_X, title: "T".repeat(101), auth: { bearer: "${INTERNAL_TOKEN}" } }, SECRETS],
  ])("for %s", (_what, entry, env) => {
    refusedEntry(entry, env); // `refused` asserts that no secret appears
  });

  it.each([
    ["a secret cut off by a missing quote", `{ "mcpServers": { "x": { "url": "${URL_X}", "auth": { "bearer": "${LITERAL_SECRET} } } } }`],
    ["a bare secret", `{ "mcpServers": { "x": { "url": "${URL_X}", "auth": { "bearer": ${LITERAL_SECRET} } } } }`],
    ["a secret before a missing comma", `{ "mcpServers": { "x": { "url": "${URL_X}", "auth": { "bearer": "${LITERAL_SECRET}" "x": 1 } } } }`],
    ["a secret in single quotes", `{ "mcpServers": { "x": { "auth": { "bearer": '${LITERAL_SECRET}' } } } }`],
  ])("for JSON with %s", (_what, file) => {
    expect(refused(file)).toMatch(/^gateway\.json: not valid JSON at line 1, column \d+: /);
  });
});

describe("parseUpstreamsFile: JSON syntax", () => {
  it.each([
    ["a bare word", `{\n  "mcpServers": {\n    "x": { "url": oops }\n  }\n}`, "line 3, column 19: unexpected character"],
    ["a trailing comma", `{\n  "mcpServers": {\n    "x": { "url": "${URL_X}", },\n  }\n}`, "line 3, column 50: expected double-quoted property name"],
    ["an unfinished file", `{\n  "mcpServers": {\n`, "line 3, column 1: expected property name or '}'"],
    ["an unfinished string", `{\n  "mcpServers": {\n    "x`, "line 3, column 7: unterminated string"],
    ["an empty file", "", "line 1, column 1: unexpected end of JSON input"],
    ["text after the object", `{ "mcpServers": {} }\n}`, "line 2, column 1: unexpected non-whitespace character after JSON"],
  ])("names the line and column of %s", (_what, file, where) => {
    expect(refused(file)).toBe(`${SOURCE}: not valid JSON at ${where}`);
  });

  it("accepts a byte order mark", () => {
    expect(parse(`\uFEFF${SPEC_EXAMPLE}`)).toHaveLength(5);
  });
});

describe("docs/gateway.schema.json agrees with the parser", () => {
  const schema = JSON.parse(readFileSync(new URL("../../docs/gateway.schema.json", import.meta.url), "utf8"));
  // strictRequired would forbid `not: { required: [...] }`, the standard way to say "not both"
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  addFormats.default(ajv);
  const validate = ajv.compile(schema);
  const files: Record<string, unknown> = {
    "the documented example": JSON.parse(SPEC_EXAMPLE),
    "one server": { mcpServers: { x: { url: URL_X } } },
    "a url from a variable": { mcpServers: { x: { url: "${SECRET_URL}" } } },
    "every oauth field": {
      mcpServers: {
        ghe: {
          url: "https://ghe.example.com/mcp",
          type: "streamable-http",
          oauth: {
            clientId: "Iv1.abc",
            clientSecret: "${GITHUB_CLIENT_SECRET}",
            scope: ["repo", "read:org"],
            issuer: "https://ghe.example.com",
            authorizationEndpoint: "https://ghe.example.com/login/oauth/authorize",
            tokenEndpoint: "https://ghe.example.com/login/oauth/access_token",
            apiUrl: "https://ghe.example.com/api/v3",
          },
          allowOrgs: ["acme"],
        },
      },
    },
    "a third-party opt-in": { mcpServers: { x: { url: URL_X, identityHeaders: { thirdParty: true }, auth: { header: "X-API-Key", value: "k" } } } },
    "auth with an empty allowOrgs": { mcpServers: { x: { url: URL_X, auth: "none", allowOrgs: [], allowUsers: ["admin"] } } },
    "fifty servers": { mcpServers: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`s-${i}`, { url: URL_X }])) },
    "a header name from a variable": { mcpServers: { x: { url: URL_X, auth: { header: "X-${HEADER_SECRET}", value: "${SEARCH_KEY}" } } } },
    "scopes separated by commas": { mcpServers: { x: { url: URL_X, oauth: { scope: "repo,read:org" } } } },
  };
  const invalid: Record<string, unknown> = {
    "an unknown top-level key": { mcpServers: { x: { url: URL_X } }, version: 1 },
    "an unknown server key": { mcpServers: { x: { url: URL_X, allowUser: ["octocat"] } } },
    "an unknown oauth key": { mcpServers: { x: { url: URL_X, oauth: { client_id: "a" } } } },
    "an unknown auth key": { mcpServers: { x: { url: URL_X, auth: { bearer: "t", header: "X-A" } } } },
    "oauth and auth together": { mcpServers: { x: { url: URL_X, oauth: {}, auth: "none" } } },
    "allowOrgs with auth": { mcpServers: { x: { url: URL_X, auth: "none", allowOrgs: ["acme"] } } },
    "a bad server name": { mcpServers: { "Bad Name": { url: URL_X } } },
    "a missing url": { mcpServers: { x: { title: "X" } } },
    "a relative url": { mcpServers: { x: { url: "/mcp" } } },
    "an ftp url": { mcpServers: { x: { url: "ftp://example.org/mcp" } } },
    "a url with a fragment": { mcpServers: { x: { url: "https://example.org/mcp#x" } } },
    "no servers": { mcpServers: {} },
    "no mcpServers": {},
    "fifty-one servers": { mcpServers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`s-${i}`, { url: URL_X }])) },
    "type sse": { mcpServers: { x: { url: URL_X, type: "sse" } } },
    "a command": { mcpServers: { x: { command: "npx" } } },
    "a url that is a number": { mcpServers: { x: { url: 42 } } },
    "a title that is a number": { mcpServers: { x: { url: URL_X, title: 1 } } },
    "a too long title": { mcpServers: { x: { url: URL_X, title: "T".repeat(101) } } },
    "a header value that is a number": { mcpServers: { x: { url: URL_X, headers: { "X-A": 1 } } } },
    "a header name that is no token": { mcpServers: { x: { url: URL_X, headers: { "Bad Name": "1" } } } },
    "identityHeaders as a string": { mcpServers: { x: { url: URL_X, identityHeaders: "true" } } },
    "thirdParty false": { mcpServers: { x: { url: URL_X, identityHeaders: { thirdParty: false } } } },
    "allowUsers as a string": { mcpServers: { x: { url: URL_X, allowUsers: "octocat" } } },
    "an empty user": { mcpServers: { x: { url: URL_X, allowUsers: [""] } } },
    "a scope that is a number": { mcpServers: { x: { url: URL_X, oauth: { scope: 1 } } } },
    "an empty scope list": { mcpServers: { x: { url: URL_X, oauth: { scope: [] } } } },
    "a scope of separators only": { mcpServers: { x: { url: URL_X, oauth: { scope: " , " } } } },
    "a blank scope in a list": { mcpServers: { x: { url: URL_X, oauth: { scope: ["repo", " "] } } } },
    "a url with a space": { mcpServers: { x: { url: "https://a.example/m cp" } } },
    "clientSecret without clientId": { mcpServers: { x: { url: URL_X, oauth: { clientSecret: "s" } } } },
    "one endpoint": { mcpServers: { x: { url: URL_X, oauth: { tokenEndpoint: "https://as.example/token" } } } },
    "auth basic": { mcpServers: { x: { url: URL_X, auth: "basic" } } },
    "auth header without value": { mcpServers: { x: { url: URL_X, auth: { header: "X-API-Key" } } } },
    "a server that is a string": { mcpServers: { x: URL_X } },
    "an array": [{ mcpServers: {} }],
  };

  it.each(Object.entries(files))("both accept %s", (_what, file) => {
    expect(validate(file), JSON.stringify(validate.errors)).toBe(true);
    expect(parse(file).length).toBeGreaterThan(0);
  });

  it.each(Object.entries(invalid))("both refuse %s", (_what, file) => {
    expect(validate(file)).toBe(false);
    refused(file);
  });
});
