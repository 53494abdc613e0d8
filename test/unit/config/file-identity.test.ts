import { describe, expect, it } from "vitest";
import { SOURCE, one, URL_X, refusedEntry } from "../../support/config-file.js";

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
