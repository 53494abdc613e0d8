import { describe, expect, it } from "vitest";
import { authorizationResponse } from "../../src/as/authorize.js";
import { canonicalResource } from "../../src/upstream/mounts.js";

describe("canonicalResource (MCP §Canonical Server URI, RFC 8707 §2)", () => {
  it.each([
    ["https://gw.example.com/mcp", "https://gw.example.com/mcp"],
    ["https://gw.example.com/mcp/", "https://gw.example.com/mcp"],
    ["HTTPS://GW.EXAMPLE.COM/mcp", "https://gw.example.com/mcp"],
    ["https://gw.example.com:443/mcp", "https://gw.example.com/mcp"],
    ["https://gw.example.com:8443/mcp", "https://gw.example.com:8443/mcp"],
    ["http://localhost:8002/mcp", "http://localhost:8002/mcp"],
    ["https://gw.example.com", "https://gw.example.com"],
    ["https://gw.example.com/", "https://gw.example.com"],
  ])("reads %s as %s", (given, expected) => {
    expect(canonicalResource(given)).toBe(expected);
  });

  it("keeps path case: only scheme and host are case-insensitive", () => {
    expect(canonicalResource("https://gw.example.com/MCP")).toBe("https://gw.example.com/MCP");
  });

  it.each([
    ["a fragment", "https://gw.example.com/mcp#x"],
    ["an empty fragment", "https://gw.example.com/mcp#"],
    ["a query", "https://gw.example.com/mcp?x=1"],
    ["a relative reference", "/mcp"],
    ["no URI at all", "gw.example.com/mcp"],
  ])("refuses %s (RFC 8707 §2)", (_what, given) => {
    expect(canonicalResource(given)).toBeUndefined();
  });
});

describe("authorizationResponse (RFC 6749 §4.1.2, RFC 9207)", () => {
  const ISS = "https://gw.example.com";
  const paramsOf = (href: string) => [...new URL(href).searchParams];

  it("appends code, state and iss to a redirect URI without a query", () => {
    const href = authorizationResponse("https://client.example/cb", { code: "c0de", state: "s-1", iss: ISS });
    expect(href.startsWith("https://client.example/cb?")).toBe(true);
    expect(paramsOf(href)).toEqual([
      ["code", "c0de"],
      ["state", "s-1"],
      ["iss", ISS],
    ]);
  });

  it("keeps the redirect URI's own query and appends after it (RFC 6749 §3.1.2)", () => {
    const href = authorizationResponse("http://127.0.0.1:4000/cb?tenant=a%20b&x=1", { code: "c0de", iss: ISS });
    const url = new URL(href);
    expect(url.origin + url.pathname).toBe("http://127.0.0.1:4000/cb");
    expect(paramsOf(href)).toEqual([
      ["tenant", "a b"],
      ["x", "1"],
      ["code", "c0de"],
      ["iss", ISS],
    ]);
  });

  it("keeps a private-use scheme redirect URI", () => {
    const href = authorizationResponse("cursor://anysphere.cursor-mcp/oauth/callback", { code: "c0de", iss: ISS });
    expect(href.startsWith("cursor://anysphere.cursor-mcp/oauth/callback?")).toBe(true);
    expect(new URL(href).searchParams.get("code")).toBe("c0de");
  });

  it.each([
    ["unicode", "état ☃ 🎉 日本語"],
    ["reserved characters", "a&b=c+d%20e#f?g/h"],
    ["spaces and quotes", ` "quoted" 'single' `],
    ["a base64 JSON blob", Buffer.from(JSON.stringify({ return: "/x?y=1", n: 1 })).toString("base64")],
  ])("returns state with %s byte for byte", (_what, state) => {
    const href = authorizationResponse("https://client.example/cb", { code: "c0de", state, iss: ISS });
    expect(new URL(href).searchParams.get("state")).toBe(state);
    expect(href).not.toContain("#");
  });

  it("leaves out parameters that are undefined", () => {
    const href = authorizationResponse("https://client.example/cb", { error: "access_denied", error_description: undefined, state: undefined, iss: ISS });
    expect(paramsOf(href)).toEqual([
      ["error", "access_denied"],
      ["iss", ISS],
    ]);
  });
});
