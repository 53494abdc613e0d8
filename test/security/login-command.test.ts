import { linkSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deviceLogin, LoginError } from "../../src/cli/login.js";
import { writeMcpConfig } from "../../src/cli/mcp-config.js";
import { tempDir } from "../support/processes.js";

/**
 * A hostile MCP server and authorization server in one, on loopback: what the `login` command must not
 * believe. `127.0.0.1:<port>` and `localhost:<port>` are two origins of it.
 */
let server: Server;
let port: number;
const at = (host: string, path: string) => `http://${host}:${port}${path}`;
/** path → JSON document served at it */
const documents = new Map<string, unknown>();
/** MCP path → the resource_metadata its 401 names */
const challenges = new Map<string, string>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    req.resume();
    const challenge = challenges.get(path);
    if (req.method === "POST" && challenge !== undefined) {
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${challenge}"` }).end();
      return;
    }
    const document = documents.get(path);
    if (document === undefined) return void res.writeHead(404).end();
    res.writeHead(path === "/token" ? 400 : 200, { "content-type": "application/json" }).end(JSON.stringify(document));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  const issuer = at("127.0.0.1", "");
  documents.set("/.well-known/oauth-authorization-server", {
    issuer,
    device_authorization_endpoint: `${issuer}/device_authorization`,
    token_endpoint: `${issuer}/token`,
  });
  documents.set("/token", { error: "access_denied", error_description: "denied\u001b[2J" });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const quietIo = (told: string[] = []) => ({ fetch, sleep: () => Promise.resolve(), tell: (line: string) => void told.push(line) });

describe("the login command does not believe the server", () => {
  it("refuses resource metadata that describes another resource than the URL given (RFC 9728 §3.3)", async () => {
    // evil.example's 401 names metadata (on its own origin) of the genuine gateway's resource
    challenges.set("/evil", at("127.0.0.1", "/.well-known/oauth-protected-resource/evil"));
    documents.set("/.well-known/oauth-protected-resource/evil", { resource: at("127.0.0.1", "/genuine/mcp"), authorization_servers: [at("127.0.0.1", "")] });
    await expect(deviceLogin({ url: at("127.0.0.1", "/evil"), clientId: "c" }, quietIo())).rejects.toThrow(
      /describes the resource .*genuine\/mcp, not .*RFC 9728/,
    );
  });

  it("refuses resource metadata on another origin than the URL given, even naming that URL", async () => {
    challenges.set("/elsewhere", at("localhost", "/.well-known/oauth-protected-resource/elsewhere"));
    documents.set("/.well-known/oauth-protected-resource/elsewhere", { resource: at("127.0.0.1", "/elsewhere"), authorization_servers: [at("127.0.0.1", "")] });
    await expect(deviceLogin({ url: at("127.0.0.1", "/elsewhere"), clientId: "c" }, quietIo())).rejects.toThrow(/resource metadata elsewhere/);
  });

  it("prints the server's verification URI, user code and errors without control characters", async () => {
    challenges.set("/mcp", at("127.0.0.1", "/.well-known/oauth-protected-resource/mcp"));
    // the same resource, written with a trailing slash: still the URL given
    documents.set("/.well-known/oauth-protected-resource/mcp", { resource: at("127.0.0.1", "/mcp/"), authorization_servers: [at("127.0.0.1", "")] });
    documents.set("/device_authorization", {
      device_code: "d",
      user_code: "\u001b[2J\u001b[HBCDF-GHJK\u0007",
      verification_uri: `${at("127.0.0.1", "/device")}\u001b]8;;https://evil.example\u0007\u202e`,
      verification_uri_complete: `${at("127.0.0.1", "/device")}\r\u009b31m`,
      expires_in: 30,
      interval: 1,
    });
    const told: string[] = [];
    const failure = await deviceLogin({ url: at("127.0.0.1", "/mcp"), clientId: "c" }, quietIo(told)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(LoginError);
    expect(told).toEqual([
      `To sign in, open ${at("127.0.0.1", "/device")}]8;;https://evil.example and enter the code [2J[HBCDF-GHJK`,
      `(or open ${at("127.0.0.1", "/device")}31m and check the code is the same)`,
    ]);
    const controls = (line: string) =>
      [...line].filter((c) => c.codePointAt(0)! < 0x20 || (c.codePointAt(0)! >= 0x7f && c.codePointAt(0)! <= 0x9f) || c === "\u202e");
    for (const line of [...told, (failure as Error).message]) expect(controls(line)).toEqual([]);
  });
});

describe("--write-config never exposes the token", () => {
  const dir = tempDir("login-config");

  it("writes a new 0600 file over an existing readable one: the old file (and any link to it) never holds the token", async () => {
    const file = join(dir, "mcp.json");
    writeFileSync(file, JSON.stringify({ theme: "dark" }), { mode: 0o644 });
    // whoever opened or linked the old 0644 file reads on from it
    const held = join(dir, "held.json");
    linkSync(file, held);
    writeMcpConfig(file, "gw", "https://gw.example/mcp", "secret-token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toContain("Bearer secret-token");
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ theme: "dark" });
    expect(readFileSync(held, "utf8")).not.toContain("secret-token");
  });

  it("follows a symbolic link: the link stays, its target gets the entry", async () => {
    mkdirSync(join(dir, "dotfiles"), { recursive: true });
    const real = join(dir, "dotfiles", "mcp.json");
    writeFileSync(real, "{}", { mode: 0o600 });
    const link = join(dir, "linked.json");
    symlinkSync(real, link);
    writeMcpConfig(link, "gw", "https://gw.example/mcp", "secret-token");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, "utf8")).toContain("Bearer secret-token");
  });
});
