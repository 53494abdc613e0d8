import { describe, expect, it } from "vitest";
import type { Fetch } from "../../src/upstream/http.js";
import { standardUpstream } from "../../src/upstream/quirks.js";

const TOKEN_ENDPOINT = "https://github.example/login/oauth/access_token";
const METADATA = "https://api.github.example/.well-known/oauth-protected-resource/mcp/";

/** A fake upstream answering every request with one canned response, remembering what it was sent. */
function fakeUpstream(body: string, init: ResponseInit) {
  const sent: Array<{ url: string; headers: Headers }> = [];
  const inner: Fetch = async (url, request) => {
    sent.push({ url, headers: new Headers(request.headers) });
    return new Response(body, init);
  };
  return { sent, fetch: standardUpstream(inner, (url) => url === TOKEN_ENDPOINT) };
}

const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
const JSON_TYPE = { "content-type": "application/json; charset=utf-8" };
const FORM_TYPE = { "content-type": "application/x-www-form-urlencoded; charset=utf-8" };
const post = { method: "POST", body: "grant_type=authorization_code" };

describe("standardUpstream: GitHub token endpoint errors", () => {
  it.each([
    ["bad_verification_code", "invalid_grant"],
    ["bad_refresh_token", "invalid_grant"],
    ["redirect_uri_mismatch", "invalid_grant"],
    ["incorrect_client_credentials", "invalid_client"],
    ["unverified_user_email", "access_denied"],
  ])("turns HTTP 200 with error %s into 400 %s (RFC 6749 §5.2)", async (github, rfc) => {
    const upstream = fakeUpstream(
      JSON.stringify({ error: github, error_description: "The code passed is incorrect or expired.", error_uri: "https://docs.github.com/x" }),
      { status: 200, headers: JSON_TYPE },
    );
    const response = await upstream.fetch(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({
      error: rfc,
      error_description: "The code passed is incorrect or expired.",
      error_uri: "https://docs.github.com/x",
    });
  });

  it("turns a form-encoded error with HTTP 200 into JSON 400", async () => {
    const upstream = fakeUpstream(form({ error: "bad_verification_code", error_description: "expired" }), { status: 200, headers: FORM_TYPE });
    const response = await upstream.fetch(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: "invalid_grant", error_description: "expired" });
  });

  it("keeps a standard error code and a non-200 status as they are", async () => {
    const upstream = fakeUpstream(JSON.stringify({ error: "invalid_client" }), { status: 401, headers: JSON_TYPE });
    const response = await upstream.fetch(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "invalid_client" });
  });
});

describe("standardUpstream: GitHub token endpoint successes", () => {
  it("turns a form-encoded token response into JSON with space-separated scope and numeric lifetimes", async () => {
    const body = form({
      access_token: "ghu_abc",
      expires_in: "28800",
      refresh_token: "ghr_def",
      refresh_token_expires_in: "15811200",
      scope: "repo,read:user",
      token_type: "bearer",
    });
    const upstream = fakeUpstream(body, { status: 200, headers: FORM_TYPE });
    const response = await upstream.fetch(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({
      access_token: "ghu_abc",
      expires_in: 28800,
      refresh_token: "ghr_def",
      refresh_token_expires_in: 15811200,
      scope: "repo read:user",
      token_type: "bearer",
    });
  });

  it("makes a comma-separated scope in a JSON response space-separated", async () => {
    const upstream = fakeUpstream(JSON.stringify({ access_token: "gho_abc", scope: "repo, gist,,read:org", token_type: "bearer" }), {
      status: 200,
      headers: JSON_TYPE,
    });
    expect(await (await upstream.fetch(TOKEN_ENDPOINT, post)).json()).toMatchObject({ scope: "repo gist read:org" });
  });

  it("keeps an empty scope empty", async () => {
    const upstream = fakeUpstream(JSON.stringify({ access_token: "gho_abc", scope: "", token_type: "bearer" }), { status: 200, headers: JSON_TYPE });
    expect(await (await upstream.fetch(TOKEN_ENDPOINT, post)).json()).toMatchObject({ scope: "" });
  });

  it("leaves a non-numeric expires_in for oauth4webapi to refuse", async () => {
    const upstream = fakeUpstream(form({ access_token: "x", token_type: "bearer", expires_in: "soon" }), { status: 200, headers: FORM_TYPE });
    expect(await (await upstream.fetch(TOKEN_ENDPOINT, post)).json()).toMatchObject({ expires_in: "soon" });
  });
});

describe("standardUpstream: everything else", () => {
  it("turns a repeated content type into the single one it means", async () => {
    const upstream = fakeUpstream(JSON.stringify({ resource: "https://api.github.example/mcp/" }), {
      status: 200,
      headers: { "content-type": "application/json, application/json" },
    });
    const response = await upstream.fetch(METADATA, { method: "GET" });
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({ resource: "https://api.github.example/mcp/" });
  });

  it("leaves responses of other URLs untouched, even ones that look like token errors", async () => {
    const body = JSON.stringify({ error: "bad_verification_code", scope: "a,b", expires_in: "60" });
    const upstream = fakeUpstream(body, { status: 200, headers: { ...JSON_TYPE, "x-github-request-id": "42" } });
    const response = await upstream.fetch("https://github.example/login/oauth/authorize", { method: "GET" });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-github-request-id")).toBe("42");
    expect(await response.text()).toBe(body);
  });

  it("passes a 5xx from the token endpoint through untouched", async () => {
    const upstream = fakeUpstream("<html>unicorn</html>", { status: 503, headers: { "content-type": "text/html", "retry-after": "5" } });
    const response = await upstream.fetch(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(await response.text()).toBe("<html>unicorn</html>");
  });

  it("passes an unparseable token endpoint body through with its status", async () => {
    const upstream = fakeUpstream("not json", { status: 200, headers: { "content-type": "text/plain" } });
    const response = await upstream.fetch(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("not json");
  });

  it("asks for JSON unless the caller chose an Accept header", async () => {
    const upstream = fakeUpstream("{}", { status: 200, headers: JSON_TYPE });
    await upstream.fetch(TOKEN_ENDPOINT, post);
    await upstream.fetch(METADATA, { method: "GET", headers: { accept: "application/jwk-set+json" } });
    expect(upstream.sent.map((s) => s.headers.get("accept"))).toEqual(["application/json", "application/jwk-set+json"]);
    expect(upstream.sent.map((s) => s.url)).toEqual([TOKEN_ENDPOINT, METADATA]);
  });

  it("rewrites nothing before the token endpoint is known", async () => {
    const inner: Fetch = async () => new Response(JSON.stringify({ error: "bad_verification_code" }), { status: 200, headers: JSON_TYPE });
    const response = await standardUpstream(inner, () => false)(TOKEN_ENDPOINT, post);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ error: "bad_verification_code" });
  });
});
