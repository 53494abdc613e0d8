import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { compactDecrypt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CodeRecord } from "../../src/grants/codes.js";
import { ManualClock } from "../../src/clock.js";
import { deriveKeys, sha256, unseal } from "../../src/crypto.js";
import type { Gateway } from "../../src/gateway.js";
import { DATABASE_FILE } from "../../src/store/sqlite.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { UpstreamTokens } from "../../src/grants/format.js";
import { TestBrowser, loginForm } from "../support/browser.js";
import { callGetMe } from "../support/connect.js";
import { REDIRECT_URI, authorizeUrl, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { tempDir } from "../support/processes.js";
import { LOGIN } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";

const MASTER_SECRET = randomBytes(32).toString("base64url");
const HOUR = 3600_000;

interface Row {
  key: string;
  value: string;
  expires_at: number;
}

/**
 * A full flow on the SQLite store with MCP_GATEWAY_SECRET set, then the store read as a thief would
 * read it: every row, and every byte of the database and its write-ahead log.
 */
describe("stolen-store", () => {
  const clock = new ManualClock();
  const dataDir = tempDir("gateway-stolen");
  let simulator: Simulator;
  let gateway: Gateway;
  let gw: string;
  /** Every raw secret value seen during the flow, with what it was. */
  const seen = new Map<string, string>();
  const keep = (what: string, value: string | undefined | null) => {
    if (value) seen.set(value, what);
  };
  let client: { client_id: string; client_secret?: string };
  let basic: Record<string, string>;
  let tokens: Record<string, string>;
  let pending: { code: string; verifier: string };
  let rows: Row[];
  let files: string;

  beforeAll(async () => {
    simulator = await startSimulator({ clock });
    const app = DEFAULT_APPS.find((a) => a.kind === "github_app")!;
    gateway = await startTestGateway({
      mcpServers: { github: { url: simulator.mcpUrl, oauth: { clientId: app.clientId, clientSecret: app.clientSecrets[0]! } } },
      atMcp: true,
      storeConfig: { kind: "sqlite", dataDir },
      secret: MASTER_SECRET,
      clock,
    });
    gw = gateway.publicUrl;
    keep("gateway password", LOGIN.password);
    keep("master secret", MASTER_SECRET);

    const registered = (await register(gw, { token_endpoint_auth_method: "client_secret_basic" })) as typeof client & { registration_access_token?: string };
    client = registered;
    keep("client secret", registered.client_secret);
    keep("registration access token", registered.registration_access_token);
    basic = { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString("base64")}` };

    const browser = new TestBrowser();
    const first = await authorizeByHand(browser);
    const issued = await tokenRequest(
      gw,
      { grant_type: "authorization_code", code: first.code, code_verifier: first.verifier, redirect_uri: REDIRECT_URI },
      basic,
    );
    expect(issued.status).toBe(200);
    keepToken("access token", issued.body.access_token!);
    keepToken("refresh token", issued.body.refresh_token!);
    await callGetMe(gw, issued.body.access_token!);

    clock.advance(9 * HOUR); // past the GitHub App token: the refresh goes upstream and rotates both
    const refreshed = await tokenRequest(gw, { grant_type: "refresh_token", refresh_token: issued.body.refresh_token! }, basic);
    expect(refreshed.status).toBe(200);
    keepToken("refreshed access token", refreshed.body.access_token!);
    keepToken("refreshed refresh token", refreshed.body.refresh_token!);
    await callGetMe(gw, refreshed.body.access_token!);
    tokens = refreshed.body;

    pending = await authorizeByHand(browser); // a code not yet redeemed: its record is in the store
    const upstream = simulator.issuedTokens();
    for (const t of upstream.access) keep("upstream access token", t);
    for (const t of upstream.refresh) keep("upstream refresh token", t);
    expect(upstream.refresh.length).toBeGreaterThanOrEqual(2);

    const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true });
    rows = db.prepare<[], Row>("SELECT key, value, expires_at FROM kv").all();
    db.close();
    files = readdirSync(dataDir)
      .map((f) => readFileSync(join(dataDir, f)).toString("latin1"))
      .join("\n");
  });
  afterAll(async () => {
    await gateway?.close();
    await simulator?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A token and each of its halves (and a JWT's payload and signature). */
  function keepToken(what: string, token: string) {
    keep(what, token);
    const [g, u] = token.split("~");
    keep(`${what}, first half`, g);
    keep(`${what}, sealed half`, u);
    const [, payload, signature] = g!.split(".");
    keep(`${what}, JWT payload`, payload);
    keep(`${what}, JWT signature`, signature);
  }

  /** /authorize → Screen 1 → upstream → callback, keeping the session cookies and the codes on the way. */
  async function authorizeByHand(browser: TestBrowser) {
    const { verifier, challenge } = pkce();
    keep("code verifier", verifier);
    const start = await browser.request(
      authorizeUrl(gw, {
        response_type: "code",
        client_id: client.client_id,
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: "S256",
        state: "s",
      }),
    );
    const page = await browser.request(start.location!);
    const answer = await browser.request(`${gw}/login`, {
      form: { ...loginForm(page.text)!, ...(page.text.includes('name="password"') ? LOGIN : {}), decision: "approve" },
    });
    expect(answer.status, answer.text).toBe(303);
    for (const response of [page, answer])
      for (const cookie of response.headers.getSetCookie()) {
        const value = decodeURIComponent(cookie.split(";")[0]!.split("=")[1]!);
        keep("session cookie", value);
        keep("session id", /^s:([^.]+)\./.exec(value)?.[1]);
      }
    const redirect = await browser.authorize(answer.location!, { redirectUri: REDIRECT_URI, ...LOGIN });
    const upstreamCallback = browser.visited.map((u) => new URL(u)).findLast((u) => u.pathname === "/upstream/callback")!;
    keep("upstream authorization code", upstreamCallback.searchParams.get("code"));
    keep("gateway authorization code", redirect.searchParams.get("code"));
    return { code: redirect.searchParams.get("code")!, verifier };
  }

  it("SS1 a store dump holds no token, code, secret or password in the clear", () => {
    expect(seen.size).toBeGreaterThan(25);
    expect([...seen.values()]).toEqual(
      expect.arrayContaining(["session id", "registration access token", "upstream refresh token", "gateway authorization code"]),
    );
    const prefixes = new Set(rows.map((r) => r.key.split(":")[0]));
    for (const kind of ["client", "code", "refresh", "sess", "usedrefresh"]) expect(prefixes, kind).toContain(kind);
    expect(rows.map((r) => r.key)).not.toContain("meta:secret");

    const dump = rows.map((r) => `${r.key}\t${r.value}\t${r.expires_at}`).join("\n");
    const inRows = [...seen].filter(([value]) => dump.includes(value)).map(([, what]) => what);
    const inFiles = [...seen].filter(([value]) => files.includes(value)).map(([, what]) => what);
    expect(inRows).toEqual([]);
    expect(inFiles).toEqual([]);
    // …and the hashes are there: the test looks where the values would be
    expect(dump).toContain(`code:${sha256(pending.code)}`);
    expect(dump).toContain(`refresh:${sha256(tokens.refresh_token!.split("~")[0]!)}`);
  });

  it("SS2 records from a store dump cannot be redeemed or opened", async () => {
    const codeRow = rows.find((r) => r.key === `code:${sha256(pending.code)}`)!;
    const codeHash = codeRow.key.slice("code:".length);
    const refreshHash = rows.find((r) => r.key === `refresh:${sha256(tokens.refresh_token!.split("~")[0]!)}`)!.key.slice("refresh:".length);
    const sealed = (JSON.parse(codeRow.value) as CodeRecord).sealedUpstream;

    // the hash that keys a record is not the bearer value that redeems it
    const stolenCode = await tokenRequest(
      gw,
      { grant_type: "authorization_code", code: codeHash, code_verifier: pending.verifier, redirect_uri: REDIRECT_URI },
      basic,
    );
    expect([stolenCode.status, stolenCode.body.error]).toEqual([400, "invalid_grant"]);
    const [, realV] = tokens.refresh_token!.split("~");
    for (const forged of [refreshHash, `${refreshHash}~${refreshHash}`, `${refreshHash}~${realV}`]) {
      const stolenRefresh = await tokenRequest(gw, { grant_type: "refresh_token", refresh_token: forged }, basic);
      expect([stolenRefresh.status, stolenRefresh.body.error]).toEqual([400, "invalid_grant"]);
    }

    // every sealed value in the dump stays shut under keys from any other secret, and opens under the real one
    const jwes = rows.flatMap((r) => r.value.match(/eyJ[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+/g) ?? []);
    expect(jwes).toContain(sealed);
    const others = [randomBytes(32).toString("base64url"), "x".repeat(32), sha256(MASTER_SECRET)].map((s) => deriveKeys(s));
    for (const jwe of jwes)
      for (const other of others) {
        await expect(compactDecrypt(jwe, other.current.sealing), "decrypts under another key").rejects.toThrow();
        await expect(unseal(other, jwe, codeHash)).rejects.toThrow();
      }
    const opened = await unseal<UpstreamTokens>(deriveKeys(MASTER_SECRET), sealed, codeHash);
    expect(simulator.issuedTokens().access).toContain(opened.access_token);

    // none of the thief's attempts used anything up: the real code and refresh token still work
    const real = await tokenRequest(
      gw,
      { grant_type: "authorization_code", code: pending.code, code_verifier: pending.verifier, redirect_uri: REDIRECT_URI },
      basic,
    );
    expect(real.status).toBe(200);
    expect((await tokenRequest(gw, { grant_type: "refresh_token", refresh_token: tokens.refresh_token! }, basic)).status).toBe(200);
  });
});
