import type { IncomingHttpHeaders } from "node:http";
import { describe, expect, it } from "vitest";
import { identityHeaders, requestHeadersForUpstream, responseHeadersForClient } from "../../src/rs/headers.js";

const UPSTREAM_TOKEN = "gho_upstream";

describe("requestHeadersForUpstream (DESIGN §5, RFC 9110 §7.6.1)", () => {
  const MCP_HEADERS: IncomingHttpHeaders = {
    "mcp-session-id": "sess-1",
    "mcp-protocol-version": "2025-11-25",
    "last-event-id": "evt-9",
    accept: "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-method": "tools/call",
    "mcp-name": "get_me",
    "user-agent": "claude-code/1.0",
  };

  it("keeps MCP's headers", () => {
    expect(requestHeadersForUpstream(MCP_HEADERS, UPSTREAM_TOKEN)).toEqual({ ...MCP_HEADERS, authorization: `Bearer ${UPSTREAM_TOKEN}` });
  });

  it("replaces the client's authorization with the upstream token (no token passthrough)", () => {
    const out = requestHeadersForUpstream({ ...MCP_HEADERS, authorization: "Bearer G~U" }, UPSTREAM_TOKEN);
    expect(out.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
    expect(JSON.stringify(out)).not.toContain("G~U");
  });

  it.each([
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "cookie",
    "host",
    "origin",
    "referer",
    "accept-encoding",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    // identity, as the gateway alone may say it (docs/security.md MU2), also with `_` for `-`
    "x-forwarded-user",
    "x-forwarded_user",
    "x_forwarded_email",
    "x-auth-request-user",
    "x-auth-request_email",
    "x-real-ip",
    "remote-user",
    "remote_user",
    "x-remote-user",
  ])("drops %s", (name) => {
    const out = requestHeadersForUpstream({ ...MCP_HEADERS, [name]: "value" }, UPSTREAM_TOKEN);
    expect(out).not.toHaveProperty(name);
    expect(out).toMatchObject(MCP_HEADERS);
  });

  // RFC 9110 §10.1.1: this hop answers 100-continue (Node does); undici's request() throws on `expect`,
  // so forwarding it turns every large POST from curl into a 502.
  it("drops expect: 100-continue", () => {
    expect(requestHeadersForUpstream({ ...MCP_HEADERS, expect: "100-continue" }, UPSTREAM_TOKEN)).not.toHaveProperty("expect");
  });

  it("drops the headers Connection nominates, in any case and spacing", () => {
    const out = requestHeadersForUpstream(
      { ...MCP_HEADERS, connection: "keep-alive,  X-Hop ,x-other", "x-hop": "1", "x-other": "2", "x-end-to-end": "3" },
      UPSTREAM_TOKEN,
    );
    expect(out).not.toHaveProperty("x-hop");
    expect(out).not.toHaveProperty("x-other");
    expect(out["x-end-to-end"]).toBe("3");
  });

  it("never lets Connection nominate the upstream authorization away", () => {
    const out = requestHeadersForUpstream({ ...MCP_HEADERS, connection: "authorization" }, UPSTREAM_TOKEN);
    expect(out.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
  });

  it("joins a repeated header into one value", () => {
    expect(requestHeadersForUpstream({ "x-multi": ["a", "b"] }, UPSTREAM_TOKEN)["x-multi"]).toBe("a, b");
  });

  it("adds the operator's fixed headers over the client's, and never lets them replace the upstream token", () => {
    const out = requestHeadersForUpstream({ ...MCP_HEADERS, "x-mcp-readonly": "false" }, UPSTREAM_TOKEN, {
      "x-mcp-readonly": "true",
      "x-mcp-toolsets": "repos",
    });
    expect(out).toMatchObject({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos", authorization: `Bearer ${UPSTREAM_TOKEN}` });
  });
});

describe("identityHeaders (docs/upstreams.md, identity headers)", () => {
  const octocat = { sub: "583231", login: "octocat", preferred_username: "octocat", email: "octocat@users.noreply.github.com" };

  it("name the upstream account when the grant holds an upstream sign-in", () => {
    expect(identityHeaders("admin", octocat, true)).toEqual({
      "x-forwarded-user": "octocat",
      "x-forwarded-email": "octocat@users.noreply.github.com",
      "x-forwarded-preferred-username": "octocat",
    });
    expect(identityHeaders("admin", { sub: "248289761001" }, true)).toEqual({ "x-forwarded-user": "248289761001" });
  });

  it("never stand in the gateway user for an upstream account that is not known", () => {
    expect(identityHeaders("admin", undefined, true)).toEqual({});
  });

  it("name the gateway user where the upstream has no sign-in of its own", () => {
    expect(identityHeaders("admin", undefined, false)).toEqual({ "x-forwarded-user": "admin", "x-forwarded-preferred-username": "admin" });
  });

  it("leave out a value that is not plain visible ASCII", () => {
    expect(identityHeaders("admin", { ...octocat, preferred_username: "Zoë", email: " a@b.example" }, true)).toEqual({ "x-forwarded-user": "octocat" });
  });
});

describe("responseHeadersForClient", () => {
  const KEPT = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "mcp-session-id": "sess-1",
    "mcp-protocol-version": "2025-11-25",
    "x-github-request-id": "abc",
  };

  it("keeps MCP's and ordinary end-to-end headers", () => {
    expect(responseHeadersForClient(KEPT)).toEqual(KEPT);
  });

  it.each([
    "connection",
    "keep-alive",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "set-cookie",
    "www-authenticate",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
  ])("does not return %s", (name) => {
    const out = responseHeadersForClient({ ...KEPT, [name]: "value" });
    expect(out).not.toHaveProperty(name);
    expect(out).toMatchObject(KEPT);
  });

  it("does not return the headers Connection nominates", () => {
    const out = responseHeadersForClient({ ...KEPT, connection: "close, X-Upstream-Hop", "x-upstream-hop": "1" });
    expect(out).not.toHaveProperty("x-upstream-hop");
    expect(out).toMatchObject(KEPT);
  });

  it("keeps Content-Length: the body is relayed byte for byte", () => {
    expect(responseHeadersForClient({ ...KEPT, "content-length": "42" })).toEqual({ ...KEPT, "content-length": "42" });
  });

  it("keeps repeated values as a list and skips undefined ones", () => {
    expect(responseHeadersForClient({ link: ["<a>", "<b>"], "x-none": undefined })).toEqual({ link: ["<a>", "<b>"] });
  });
});
