import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { TestBrowser, loginForm } from "../support/browser.js";
import { callGetMe } from "../support/connect.js";
import { REDIRECT_URI, authorizeUrl, clientAuthorizeUrl, obtainCode, redeem, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";
import { json, send } from "../support/raw-http.js";
import { startTestGateway } from "../support/gateway.js";
import { startStack, type Stack } from "../support/stack.js";

const ALLOWED_ORIGIN = "https://app.example";
const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "hostile", version: "1" } },
});
const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

/** A value shaped like a credential, unique per call, so an echo of it anywhere is unambiguous. */
const secretLike = (prefix = "gho_") => `${prefix}${randomBytes(18).toString("base64url")}`;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

describe("hostile-input", () => {
  let stack: Stack;
  let gw: string;
  let bearer: string;
  beforeAll(async () => {
    stack = await startStack({ config: { allowedOrigins: [ALLOWED_ORIGIN] } });
    gw = stack.gateway.publicUrl;
    const { body } = await redeem(gw, await obtainCode(gw));
    bearer = `Bearer ${body.access_token}`;
  });
  afterAll(() => stack?.close());

  const upstreamMcpRequests = () => stack.simulator.requests.filter((r) => r.origin === "mcp").length;
  const mcp = (method: string, headers: Record<string, string>, body?: string | Buffer | Readable) =>
    send(stack.mcpUrl, { method, headers: { ...MCP_HEADERS, ...headers }, ...(body === undefined ? {} : { body }) });
  const preflight = (origin: string) =>
    send(stack.mcpUrl, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, mcp-protocol-version" },
    });

  it("WP7 /mcp refuses a foreign Origin", async () => {
    const port = new URL(gw).port;
    const foreign = [
      "http://evil.example",
      `http://attacker.example:${port}`, // DNS rebinding: the attacker's name, the gateway's address and port
      "null",
      "http://localhost.evil.example:6274",
      "http://127.0.0.1.nip.io",
      `${ALLOWED_ORIGIN}:8443`,
      "https://app.example.evil.example",
      `${gw}/mcp`,
    ];
    const before = upstreamMcpRequests();
    for (const origin of foreign) {
      for (const method of ["POST", "GET", "DELETE"]) {
        const refused = await mcp(method, { origin, authorization: bearer }, method === "POST" ? INITIALIZE : undefined);
        expect(refused.status, `${method} with Origin ${origin}`).toBe(403);
        expect(json(refused.text)).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32000, message: expect.stringContaining("Origin") } });
      }
      // before token validation: without a token the answer is still 403, not a 401 challenge
      expect((await mcp("POST", { origin }, INITIALIZE)).status).toBe(403);
      const pre = await preflight(origin);
      expect(pre.status).toBe(403);
      expect(pre.headers["access-control-allow-origin"]).toBeUndefined();
    }
    expect(upstreamMcpRequests()).toBe(before);

    for (const origin of [undefined, "http://localhost:6274", "http://127.0.0.1:5173", "http://[::1]:6274", gw, ALLOWED_ORIGIN]) {
      const passed = await mcp("POST", { ...(origin ? { origin } : {}), authorization: bearer }, INITIALIZE);
      expect(passed.status, `Origin ${origin}`).toBe(200);
      if (!origin) continue;
      const pre = await preflight(origin);
      expect(pre.status).toBe(204);
      expect(pre.headers["access-control-allow-origin"]).toBeDefined();
    }
    expect(upstreamMcpRequests()).toBe(before + 6);
  });

  it("HI2 oversized bodies are refused on every endpoint", async () => {
    const pad = (n: number) => "a".repeat(n);
    const expectRefused = (r: { status: number; text: string; headers: Record<string, unknown> }, status: number, what: string) => {
      expect(r.status, `${what}: ${r.text.slice(0, 200)}`).toBe(status);
      if (String(r.headers["content-type"]).startsWith("application/json")) expect(json(r.text).error, what).toBe("invalid_request");
      else expect(r.text, what).toContain("invalid_request"); // /login answers with its HTML error page
    };
    const jsonHeaders = { "content-type": "application/json" };
    const formHeaders = { "content-type": "application/x-www-form-urlencoded" };
    const chunks = (total: number, size = 64 * 1024) =>
      Readable.from(
        (function* () {
          for (let sent = 0; sent < total; sent += size) yield Buffer.alloc(Math.min(size, total - sent), 0x61);
        })(),
      );

    // /register: JSON, 64 KB; just under it the body is parsed (and refused for its content)
    const registration = (n: number) => JSON.stringify({ redirect_uris: [REDIRECT_URI], client_name: pad(n) });
    expectRefused(await send(`${gw}/register`, { headers: jsonHeaders, body: registration(70_000) }), 413, "/register 70 KB");
    expect(json((await send(`${gw}/register`, { headers: jsonHeaders, body: registration(60_000) })).text).error).toBe("invalid_client_metadata");
    const malformed = await send(`${gw}/register`, { headers: jsonHeaders, body: '{"redirect_uris": [' });
    expect([malformed.status, json(malformed.text).error]).toEqual([400, "invalid_client_metadata"]);
    expectRefused(await send(`${gw}/register`, { headers: { "content-type": "application/json; charset=utf-16" }, body: "{}" }), 415, "/register utf-16");

    // forms: 16 KB, with a Content-Length and chunked; unknown charsets and too many parameters too
    for (const path of ["/token", "/revoke", "/introspect", "/login"]) {
      const under = await send(`${gw}${path}`, { headers: formHeaders, body: `client_id=x&pad=${pad(15_000)}` });
      expect(under.status, `${path} 15 KB`).not.toBe(413);
      expectRefused(await send(`${gw}${path}`, { headers: formHeaders, body: `client_id=x&pad=${pad(17_000)}` }), 413, `${path} 17 KB`);
      expectRefused(await send(`${gw}${path}`, { headers: formHeaders, body: chunks(40_000) }), 413, `${path} chunked 40 KB`);
      expectRefused(
        await send(`${gw}${path}`, { headers: formHeaders, body: Array.from({ length: 60 }, (_, i) => `p${i}=1`).join("&") }),
        413,
        `${path} 60 parameters`,
      );
      expectRefused(
        await send(`${gw}${path}`, { headers: { "content-type": `${formHeaders["content-type"]}; charset=utf-16` }, body: "a=b" }),
        415,
        `${path} utf-16`,
      );
    }

    // compressed bodies: a 10 MB gzip bomb of 10 KB is refused before anything inflates it
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(16 * 1024);
    for (const [path, type] of [
      ["/register", "application/json"],
      ...["/token", "/revoke", "/introspect", "/login"].map((p) => [p, formHeaders["content-type"]]),
    ] as const) {
      const r = await send(`${gw}${path}`, { headers: { "content-type": type, "content-encoding": "gzip" }, body: bomb });
      expectRefused(r, 415, `${path} gzip`);
    }

    // /mcp: 4 MB, refused before the upstream hears of it when Content-Length says so, counted when chunked
    const before = upstreamMcpRequests();
    const declared = await mcp("POST", { authorization: bearer }, Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
    expectRefused(declared, 413, "/mcp 4 MB + 1");
    expect(upstreamMcpRequests()).toBe(before);
    expectRefused(await mcp("POST", { authorization: bearer }, chunks(6 * 1024 * 1024)), 413, "/mcp chunked 6 MB");
    const initialize = JSON.parse(INITIALIZE) as { params: object };
    const large = JSON.stringify({ ...initialize, params: { ...initialize.params, _meta: { padding: pad(3 * 1024 * 1024) } } });
    expect((await mcp("POST", { authorization: bearer }, large)).status).toBe(200);
    expect((await mcp("POST", { authorization: bearer }, chunks(1024 * 1024))).status).toBeLessThan(500);
    // the gateway is still whole
    expect((await callGetMe(gw, bearer.slice("Bearer ".length))).login).toBe(stack.simulator.users[0]!.login);
  });

  it("HI3 errors name the problem without echoing secrets or stack traces", async () => {
    const answers: { what: string; status: number; text: string; headers: Record<string, unknown> }[] = [];
    const record = (what: string, r: { status: number; text: string; headers: Record<string, unknown> }) => void answers.push({ what, ...r });
    const secret = secretLike();
    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const formHeaders = { "content-type": "application/x-www-form-urlencoded" };
    const confidential = await register(gw, { token_endpoint_auth_method: "client_secret_basic" });

    record(
      "wrong client_secret in the body",
      await send(`${gw}/token`, {
        headers: formHeaders,
        body: form({ grant_type: "authorization_code", code: "c", client_id: confidential.client_id, client_secret: secret }),
      }),
    );
    record(
      "wrong client_secret in Basic",
      await send(`${gw}/token`, {
        headers: { ...formHeaders, authorization: basic(confidential.client_id, secret) },
        body: form({ grant_type: "authorization_code", code: "c" }),
      }),
    );
    record(
      "malformed Basic",
      await send(`${gw}/token`, { headers: { ...formHeaders, authorization: `Basic ${secret}` }, body: form({ grant_type: "refresh_token" }) }),
    );
    record(
      "unknown code",
      await send(`${gw}/token`, {
        headers: { ...formHeaders, authorization: basic(confidential.client_id, confidential.client_secret!) },
        body: form({ grant_type: "authorization_code", code: secret, code_verifier: secret }),
      }),
    );
    record(
      "forged refresh token",
      await send(`${gw}/token`, {
        headers: { ...formHeaders, authorization: basic(confidential.client_id, confidential.client_secret!) },
        body: form({ grant_type: "refresh_token", refresh_token: `${secret}~${secret}` }),
      }),
    );
    record(
      "grant_type carrying a secret",
      await send(`${gw}/token`, { headers: formHeaders, body: form({ grant_type: secret, client_id: confidential.client_id }) }),
    );
    for (const path of ["/revoke", "/introspect"])
      record(
        `${path} with a wrong secret`,
        await send(`${gw}${path}`, { headers: { ...formHeaders, authorization: basic(confidential.client_id, secret) }, body: form({ token: secret }) }),
      );
    record("forged JWT at /mcp", await mcp("POST", { authorization: `Bearer eyJ${secret}.eyJ${secret}.${secret}~${secret}` }, INITIALIZE));
    record("malformed bearer at /mcp", await mcp("POST", { authorization: `Bearer ${secret} ${secret}` }, INITIALIZE));
    record(
      "invalid JSON at /register",
      await send(`${gw}/register`, { headers: { "content-type": "application/json" }, body: `{"client_secret":"${secret}", "redirect_uris": [` }),
    );
    record("JSON of the wrong type at /register", await send(`${gw}/register`, { headers: { "content-type": "application/json" }, body: `"${secret}"` }));
    record("unknown client at /authorize", await send(authorizeUrl(gw, { client_id: secret, response_type: "code" }), { method: "GET" }));
    record("unknown sign-in at /login", await send(`${gw}/login?request=${secret}`, { method: "GET" }));
    record("forged upstream callback", await send(`${gw}/upstream/callback?code=${secret}&state=${secret}`, { method: "GET" }));

    const browser = new TestBrowser();
    const { client_id } = await register(gw);
    const loginPage = await browser.request((await browser.request(clientAuthorizeUrl(gw, client_id))).location!);
    const wrongPassword = await browser.request(`${gw}/login`, {
      form: { ...loginForm(loginPage.text)!, username: LOGIN.username, password: secret, decision: "approve" },
    });
    record("wrong password", { status: wrongPassword.status, text: wrongPassword.text, headers: Object.fromEntries(wrongPassword.headers) });
    expect(wrongPassword.status).toBe(401);

    // an unexpected failure (a store that breaks with a message full of internals) is a generic 500
    const failing = await gatewayWithBrokenStore(`SQLITE_CORRUPT: /var/lib/mcp-oauth-gateway/gateway.db refresh:${secret}`);
    try {
      record("store failure at /readyz", await send(`${failing.url}/readyz`, { method: "GET" }));
      record(
        "store failure at /token",
        await send(`${failing.url}/token`, { headers: formHeaders, body: form({ grant_type: "authorization_code", client_id: "c" }) }),
      );
      record("store failure at /login", await send(`${failing.url}/login?request=r`, { method: "GET" }));
      for (const a of answers.slice(-3)) expect([a.what, a.status], a.text).toEqual([a.what, 500]);
      expect(json(answers.at(-2)!.text)).toEqual({ error: "server_error", error_description: expect.stringMatching(/unexpected/) });
      expect(failing.lines.join("\n")).toContain("SQLITE_CORRUPT"); // the cause goes to the log…
      expect(failing.lines.join("\n")).not.toContain(secret); // …redacted
    } finally {
      await failing.close();
    }

    for (const a of answers) {
      const wire = `${a.text}\n${JSON.stringify(a.headers)}`;
      expect(a.status, a.what).toBeGreaterThanOrEqual(400);
      expect(wire, a.what).not.toContain(secret);
      expect(wire, a.what).not.toContain(secret.slice(4, 20));
      expect(wire, a.what).not.toMatch(/\bat .+:\d+:\d+|\bat (async )?[\w.<>]+ \(|node_modules|\/work\/|\/var\/lib|\.[jt]s:\d+|SQLITE|SyntaxError|TypeError/);
      if (String(a.headers["content-type"]).startsWith("application/json") && a.status !== 403)
        expect(json(a.text), a.what).toEqual(
          a.status >= 500 ? { error: "server_error", error_description: expect.any(String) } : expect.objectContaining({ error: expect.any(String) }),
        );
    }
  });

  it("HI4 no log line carries a token, code, secret or password", async () => {
    const lines: string[] = [];
    const logged = await startStack({ mode: "github_app", log: createLogger((l) => lines.push(l)) });
    try {
      const gwUrl = logged.gateway.publicUrl;
      const secrets = new Set<string>([LOGIN.password]);
      const keep = (...values: (string | undefined | null)[]) => {
        for (const v of values) if (v) for (const piece of [v, ...v.split(/[~.]/)]) if (piece.length >= 12 && !piece.startsWith("eyJhbGci")) secrets.add(piece);
      };
      const client = await register(gwUrl, { token_endpoint_auth_method: "client_secret_basic" });
      keep(client.client_secret, (client as { registration_access_token?: string }).registration_access_token);
      const auth = { authorization: basic(client.client_id, client.client_secret!) };

      // a failed sign-in, then the real one
      const wrong = secretLike("pw-");
      keep(wrong);
      const failing = new TestBrowser();
      const page = await failing.request((await failing.request(clientAuthorizeUrl(gwUrl, client.client_id))).location!);
      expect(
        (await failing.request(`${gwUrl}/login`, { form: { ...loginForm(page.text)!, username: LOGIN.username, password: wrong, decision: "approve" } }))
          .status,
      ).toBe(401);

      const { verifier, challenge } = pkce();
      const state = secretLike("st-");
      keep(verifier, challenge, state);
      const browser = new TestBrowser();
      const url = authorizeUrl(gwUrl, {
        response_type: "code",
        client_id: client.client_id,
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: "S256",
        state,
      });
      const redirect = await browser.authorize(url, { redirectUri: REDIRECT_URI, ...LOGIN });
      for (const visited of [...browser.visited, redirect.href]) for (const name of ["code", "state"]) keep(new URL(visited).searchParams.get(name));
      const code = redirect.searchParams.get("code")!;

      const first = await tokenRequest(gwUrl, { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT_URI }, auth);
      expect(first.status).toBe(200);
      keep(first.body.access_token, first.body.refresh_token);
      expect((await callGetMe(gwUrl, first.body.access_token!)).login).toBe(logged.simulator.users[0]!.login);

      logged.clock.advance(9 * 3600_000); // past the GitHub App token: the refresh goes upstream too
      const second = await tokenRequest(gwUrl, { grant_type: "refresh_token", refresh_token: first.body.refresh_token! }, auth);
      expect(second.status).toBe(200);
      keep(second.body.access_token, second.body.refresh_token);
      await callGetMe(gwUrl, second.body.access_token!);

      const badSecret = secretLike("cs-");
      keep(badSecret);
      expect(
        (
          await tokenRequest(
            gwUrl,
            { grant_type: "refresh_token", refresh_token: second.body.refresh_token! },
            { authorization: basic(client.client_id, badSecret) },
          )
        ).status,
      ).toBe(401);
      const revoked = await send(`${gwUrl}/revoke`, {
        headers: { "content-type": "application/x-www-form-urlencoded", ...auth },
        body: new URLSearchParams({ token: second.body.refresh_token! }).toString(),
      });
      expect(revoked.status, `/revoke answered ${revoked.status}`).toBe(200);
      expect((await send(`${gwUrl}/mcp`, { headers: { ...MCP_HEADERS, authorization: `Bearer ${first.body.access_token}x` }, body: INITIALIZE })).status).toBe(
        401,
      );

      const upstream = logged.simulator.issuedTokens();
      keep(...upstream.access, ...upstream.refresh);
      expect(upstream.refresh.length).toBeGreaterThanOrEqual(2);

      // the capture is real: every step left its line, without a query string
      for (const step of [
        "POST /register 201",
        "POST /login 401",
        "GET /upstream/callback 302",
        "POST /token 200",
        "POST /mcp 200",
        "POST /token 401",
        "POST /revoke",
      ])
        expect(
          lines.some((l) => l.includes(` ${step}`)),
          step,
        ).toBe(true);
      expect(lines.filter((l) => / (GET|POST) \S*\?/.test(l))).toEqual([]);
      const leaks = [...secrets].flatMap((s) => lines.filter((l) => l.includes(s)).map((l) => `${s.slice(0, 6)}… in: ${l}`));
      expect(leaks).toEqual([]);
      expect(secrets.size).toBeGreaterThan(15);
    } finally {
      await logged.close();
    }
  });
});
/** A gateway whose store starts failing after start-up with `message`, and the log lines it wrote. */
async function gatewayWithBrokenStore(message: string) {
  const clock = new ManualClock();
  const lines: string[] = [];
  let broken = false;
  class BrokenStore extends MemoryStore {
    override async get<T>(key: string): Promise<T | undefined> {
      if (broken) throw new Error(message);
      return super.get<T>(key);
    }
  }
  const gateway = await startTestGateway({
    mcpServers: {
      github: {
        url: "http://127.0.0.1:9/mcp",
        oauth: { clientId: "id", authorizationEndpoint: "http://127.0.0.1:9/authorize", tokenEndpoint: "http://127.0.0.1:9/token" },
      },
    },
    atMcp: true,
    users: [{ username: "admin", password: LOGIN.password }],
    clock,
    store: new BrokenStore(clock),
    log: createLogger((l) => lines.push(l)),
  });
  broken = true;
  return { url: gateway.publicUrl, lines, close: () => gateway.close() };
}
