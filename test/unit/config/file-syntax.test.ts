import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { SOURCE, SECRETS, LITERAL_SECRET, parse, one, URL_X, refused, refusedEntry, SPEC_EXAMPLE } from "../../support/config-file.js";

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
  const schema = JSON.parse(readFileSync(new URL("../../../docs/gateway.schema.json", import.meta.url), "utf8"));
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
    "a command": { mcpServers: { x: { command: "npx" } } },
    "a local server with every key": {
      mcpServers: {
        memory: {
          type: "stdio",
          command: "npx",
          args: ["-y", "@modelcontextprotocol/server-memory", "--dir={{userDir}}"],
          env: { MEMORY_FILE_PATH: "{{userDir}}/memory.jsonl", TOKEN: "${INTERNAL_TOKEN}" },
          cwd: "{{userDir}}",
          identityEnv: true,
          title: "Memory",
          allowUsers: ["alice"],
        },
        fetch: { command: "uvx", args: ["mcp-server-fetch"], shared: true, cwd: "/srv/fetch" },
        spaced: { command: "/opt/My Server/bin/server" },
        remote: { url: URL_X },
      },
    },
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
    "a command and a url": { mcpServers: { x: { command: "npx", url: URL_X } } },
    "a stdio type with a url": { mcpServers: { x: { type: "stdio", url: URL_X } } },
    "a command with a typo placeholder": { mcpServers: { x: { command: "npx", args: ["{{userdir}}"] } } },
    "a placeholder in the command": { mcpServers: { x: { command: "{{userDir}}/server" } } },
    "a shared server with {{userDir}}": { mcpServers: { x: { command: "npx", shared: true, env: { F: "{{userDir}}/f" } } } },
    "a shared server with identityEnv": { mcpServers: { x: { command: "npx", shared: true, identityEnv: true } } },
    "a command with oauth": { mcpServers: { x: { command: "npx", oauth: {} } } },
    "a command with a type http": { mcpServers: { x: { command: "npx", type: "http" } } },
    "a command line in command": { mcpServers: { x: { command: "npx -y server" } } },
    "a blank command": { mcpServers: { x: { command: " " } } },
    "an env value that is a number": { mcpServers: { x: { command: "npx", env: { N: 1 } } } },
    "an identity variable in env": { mcpServers: { x: { command: "npx", env: { MCP_GATEWAY_USER: "root" } } } },
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
