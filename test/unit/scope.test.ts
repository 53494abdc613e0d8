import { describe, expect, it } from "vitest";
import { firstOutside, isScope, scopeTokens, scopeUnion } from "../../src/scope.js";

describe("isScope (RFC 6749 §3.3)", () => {
  it.each(["repo", "read:user repo", "a b c", "mcp:tools/read", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"])("accepts %j", (scope) => {
    expect(isScope(scope)).toBe(true);
  });

  it.each([
    ["empty", ""],
    ["a leading space", " repo"],
    ["a trailing space", "repo "],
    ["a double space", "repo  user"],
    ["a tab", "repo\tuser"],
    ["a newline", "repo\nuser"],
    ["a double quote", 're"po'],
    ["a backslash", "re\\po"],
    ["non-ASCII", "répo"],
    ["a control character", "repo\u0000"],
  ])("refuses %s", (_what, scope) => {
    expect(isScope(scope)).toBe(false);
  });
});

describe("scopeTokens (RFC 6749 §3.3)", () => {
  it.each([
    [undefined, []],
    ["", []],
    ["repo", ["repo"]],
    ["read:org repo", ["read:org", "repo"]],
    [" repo  gist ", ["repo", "gist"]],
  ])("reads %j as %j", (scope, tokens) => {
    expect(scopeTokens(scope)).toEqual(tokens);
  });
});

describe("firstOutside (RFC 6749 §3.3)", () => {
  it.each([
    ["repo", "repo"],
    ["repo read:org", "read:org repo gist"],
    ["repo repo", "repo"],
    ["", "repo"],
    ["", ""],
  ])("finds nothing of %j outside %j", (scope, allowed) => {
    expect(firstOutside(scope, allowed)).toBeUndefined();
  });

  it.each([
    ["gist", "repo", "gist"],
    ["repo gist delete_repo", "repo", "gist"],
    ["repo", "", "repo"],
    ["repo", "repository", "repo"],
    ["Repo", "repo", "Repo"],
  ])("finds in %j outside %j the token %j", (scope, allowed, outside) => {
    expect(firstOutside(scope, allowed)).toBe(outside);
  });
});

describe("scopeUnion (RFC 6749 §3.3)", () => {
  it("keeps each token once, in the order first named", () => {
    expect(scopeUnion("repo read:org", "gist repo", undefined, "")).toBe("repo read:org gist");
  });

  it("is empty for no scope at all", () => {
    expect(scopeUnion(undefined)).toBe("");
  });
});
