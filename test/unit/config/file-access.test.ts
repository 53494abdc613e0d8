import { describe, expect, it } from "vitest";
import { SOURCE, SECRETS, LITERAL_SECRET, one, URL_X, refusedEntry, plain } from "../../support/config-file.js";

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
