import express from "express";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { claimsIdentity, requestHeadersForUpstream } from "../../src/rs/headers.js";
import { McpSessions } from "../../src/rs/sessions.js";
import { clientAddress, StreamLimits } from "../../src/rs/streams.js";
import { MemoryStore } from "../../src/store/memory.js";

describe("McpSessions (docs/security.md MU9)", () => {
  const resource = "http://127.0.0.1:8002/mcp";
  const alice = McpSessions.owner({ client_id: "c1", sub: "alice" });
  const bob = McpSessions.owner({ client_id: "c1", sub: "bob" });

  it("MU9 a session belongs to the client and user it was issued to, and is unknown to everyone else and at other resources", async () => {
    const sessions = new McpSessions(new MemoryStore(), new ManualClock(), 3600);
    expect(await sessions.belongsTo(resource, "s1", alice)).toBe(false);
    expect(await sessions.bind(resource, "s1", alice)).toBe(true);
    expect(await sessions.belongsTo(resource, "s1", alice)).toBe(true);
    expect(await sessions.belongsTo(resource, "s1", bob)).toBe(false);
    expect(await sessions.belongsTo(resource, "s1", McpSessions.owner({ client_id: "c2", sub: "alice" }))).toBe(false);
    expect(await sessions.belongsTo(`${resource}/other`, "s1", alice)).toBe(false);
  });

  it("MU9 the first binding wins, on this instance and on another sharing the store", async () => {
    const store = new MemoryStore();
    const clock = new ManualClock();
    const one = new McpSessions(store, clock, 3600);
    const two = new McpSessions(store, clock, 3600);
    expect(await one.bind(resource, "s1", alice)).toBe(true);
    expect(await one.bind(resource, "s1", bob)).toBe(false);
    expect(await two.bind(resource, "s1", bob)).toBe(false);
    expect(await two.belongsTo(resource, "s1", alice)).toBe(true);
  });

  it("MU9 a binding lapses with its TTL in the cache as in the store, and unbind forgets it", async () => {
    const clock = new ManualClock();
    const store = new MemoryStore(clock);
    const sessions = new McpSessions(store, clock, 60);
    await sessions.bind(resource, "s1", alice);
    clock.advance(59_000);
    expect(await sessions.belongsTo(resource, "s1", alice)).toBe(true);
    clock.advance(2_000);
    expect(await sessions.belongsTo(resource, "s1", alice)).toBe(false);
    await sessions.bind(resource, "s2", alice);
    await sessions.unbind(resource, "s2");
    expect(await new McpSessions(store, clock, 60).belongsTo(resource, "s2", alice)).toBe(false);
    expect(await sessions.belongsTo(resource, "s2", alice)).toBe(false);
  });
});

describe("client headers that never reach an upstream (docs/security.md MU10)", () => {
  it.each([
    "remote-groups",
    "remote-email",
    "remote-name",
    "x-remote-groups",
    "x-webauth-user",
    "x-user",
    "x-email",
    "x-authenticated-user",
    "true-client-ip",
    "cf-connecting-ip",
    "x-real-ip",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-auth-request-user",
    "x-amzn-oidc-identity",
    "x-goog-authenticated-user-email",
    "x-ms-client-principal-name",
    "cf-access-authenticated-user-email",
    "tailscale-user-login",
    "x-ssl-client-s-dn",
    "x-userinfo",
    "x-jwt-assertion",
    "x-consumer-username",
    "x-consumer-id",
    "x-consumer-custom-id",
    "x-credential-username",
    "x-credential-identifier",
    "x-auth-user",
    "x-id-token",
    "x-access-token",
    "x-principal",
    "client-ip",
    "x-originating-ip",
    "x-proxyuser-ip",
    "x-envoy-external-address",
    "x-envoy-original-path",
    "x-envoy-peer-metadata",
    "oidc-claim-email",
    "oidc-access-token",
    "x-ms-token-aad-id-token",
    "x-ms-token-aad-access-token",
  ])("MU10 drops %s, and its spelling with underscores", (name) => {
    expect(claimsIdentity(name)).toBe(true);
    const out = requestHeadersForUpstream({ [name]: "admin", [name.replaceAll("-", "_")]: "admin", accept: "*/*" }, "");
    expect(out).toEqual({ accept: "*/*" });
  });

  it.each(["x-original-url", "x-rewrite-url", "x-original-uri", "x-original-method", "x-http-method-override", "x-http-method", "x-method-override"])(
    "MU10 drops %s, which would make an upstream take another method or path than the one relayed, and its spelling with underscores",
    (name) => {
      const out = requestHeadersForUpstream({ [name]: "DELETE", [name.replaceAll("-", "_")]: "/admin", accept: "*/*" }, "");
      expect(out).toEqual({ accept: "*/*" });
    },
  );

  it("MU9 forwards the session id and Content-Length only as spelt: another spelling is dropped, never read as the session by an upstream", () => {
    const spellings = { mcp_session_id: "victim", "mcp-session_id": "victim", mcp_session_id_: "kept", content_length: "0" };
    expect(requestHeadersForUpstream({ ...spellings, "mcp-session-id": "mine", "content-length": "2" }, "")).toEqual({
      "mcp-session-id": "mine",
      "content-length": "2",
      mcp_session_id_: "kept",
    });
    expect(requestHeadersForUpstream(spellings, "")).toEqual({ mcp_session_id_: "kept" });
  });

  it("MU10 drops every spelling of a header the gateway sets, and keeps the client's other headers", () => {
    const fixed = { "x-mcp-readonly": "true", "x-api-key": "key" };
    const out = requestHeadersForUpstream(
      { "x-mcp-readonly": "false", x_mcp_readonly: "false", "x-mcp_readonly": "false", x_api_key: "mine", authorization_: "kept", "x-mcp-toolsets": "repos" },
      "",
      fixed,
    );
    expect(out).toEqual({ "x-mcp-readonly": "true", "x-api-key": "key", authorization_: "kept", "x-mcp-toolsets": "repos" });
  });
});

describe("StreamLimits (docs/security.md HI9)", () => {
  it("HI9 counts streams per grant and per address, and each release frees its place once", () => {
    const limits = new StreamLimits(2, 3);
    const a1 = limits.open("a", "10.0.0.1");
    const a2 = limits.open("a", "10.0.0.1");
    expect(limits.open("a", "10.0.0.2")).toEqual({ over: "grant", limit: 2 });
    const b1 = limits.open("b", "10.0.0.1");
    expect(limits.open("c", "10.0.0.1")).toEqual({ over: "address", limit: 3 });
    expect(typeof limits.open("c", "10.0.0.2")).toBe("function");
    if (typeof a1 !== "function" || typeof a2 !== "function" || typeof b1 !== "function") throw new Error("not counted");
    a1();
    a1();
    expect(limits.size).toBe(3);
    expect(typeof limits.open("a", "10.0.0.1")).toBe("function");
    expect(limits.open("a", "10.0.0.1")).toEqual({ over: "grant", limit: 2 });
  });

  it.each([false, true, "loopback", 1, 2, "10.0.0.0/8", "127.0.0.1, 10.0.0.2"])(
    "HI9 names the client's address as Express's req.ip does (trust proxy %s)",
    async (trustProxy) => {
      const app = express();
      app.set("trust proxy", trustProxy);
      const trust = app.get("trust proxy fn") as (address: string, hop: number) => boolean;
      app.get("/", (req, res) => void res.json({ express: req.ip, ours: clientAddress(req, trust) }));
      for (const forwarded of [undefined, "198.51.100.7", "203.0.113.1, 10.0.0.2", " 203.0.113.1 ,, 10.0.0.9 , 10.0.0.2", "garbage, 10.0.0.2"]) {
        const call = request(app).get("/");
        const { body } = await (forwarded === undefined ? call : call.set("X-Forwarded-For", forwarded));
        expect(body.ours, `X-Forwarded-For: ${forwarded}`).toBe(body.express);
      }
    },
  );
});
