import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { deriveKeys } from "../../src/crypto.js";
import { createLogger, redact } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { SEPARATOR, type TokenResponse } from "../../src/grants/format.js";
import { issueTokens } from "../../src/grants/issue.js";

/** A real token pair of ours, so the test follows the format rather than a guess at it. */
async function realTokens(): Promise<TokenResponse> {
  const clock = new ManualClock();
  const ctx = {
    keys: deriveKeys("s".repeat(32)),
    store: new MemoryStore(clock),
    clock,
    issuer: "https://gw.example",
    accessTokenTtl: 3600,
    refreshTokenTtl: 86_400,
  };
  const grant = { grantId: "g", clientId: "c", sub: "alice", scope: "repo", resource: "https://gw.example/mcp" };
  return issueTokens(ctx, grant, { access_token: "gho_x" }, { refresh: true });
}

/** Every piece of the token long enough to be worth stealing (segments between '.' and '~'). */
const pieces = (token: string) => token.split(/[.~]/).filter((p) => p.length >= 8);

describe("redact", () => {
  it("leaves an ordinary line alone", () => {
    const line = "info POST /token 200 12ms client_id=abc grant_type=authorization_code redirect_uri=http://127.0.0.1:4000/cb";
    expect(redact(line)).toBe(line);
  });

  it.each([
    ["Bearer", "authorization: Bearer abc.def-ghi_jkl~mno", "authorization: Bearer [redacted]"],
    ["bearer in lower case", "auth bearer s3cr3t!", "auth bearer [redacted]"],
    ["Basic", "Authorization: Basic Y2xpZW50OnNlY3JldA==", "Authorization: Basic [redacted]"],
  ])("removes %s credentials", (_what, line, expected) => {
    expect(redact(line)).toBe(expected);
  });

  it("removes our G~U access token, both halves", async () => {
    const { access_token } = await realTokens();
    const line = redact(`upstream said no to ${access_token} (quoted: "${access_token}")`);
    for (const piece of pieces(access_token)) expect(line).not.toContain(piece);
    expect(line).toContain("upstream said no to");
  });

  it("removes our R~V refresh token, both halves", async () => {
    const { refresh_token } = await realTokens();
    const [r] = refresh_token!.split(SEPARATOR);
    const line = redact(`{"refresh_token":"${refresh_token}"} and bare ${refresh_token}`);
    expect(line).not.toContain(r!);
    for (const piece of pieces(refresh_token!)) expect(line).not.toContain(piece);
  });

  it.each(["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"])("removes GitHub %s tokens", (prefix) => {
    const token = `${prefix}A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8`;
    const line = redact(`{"access_token":"${token}","token_type":"bearer"}`);
    expect(line).not.toContain(token.slice(prefix.length));
    expect(line).toContain('"token_type":"bearer"');
  });

  it.each(["code", "state", "access_token", "refresh_token", "client_secret", "password", "code_verifier", "token"])("removes the value of %s=", (name) => {
    const secret = "Zx9-s3cr3t_VALUE.42";
    expect(redact(`GET /cb?${name}=${secret}&client_id=abc`)).toBe(`GET /cb?${name}=[redacted]&client_id=abc`);
    expect(redact(`body: grant_type=x&${name}=${secret}`)).toBe(`body: grant_type=x&${name}=[redacted]`);
    expect(redact(`"${name}=${secret}"`)).toBe(`"${name}=[redacted]"`);
  });

  it.each(["client_secret", "registration_access_token", "password", "access_token", "refresh_token", "code", "state", "csrf"])(
    "removes the value of %s in JSON",
    (name) => {
      const secret = 'Zx9-s3cr3t_VALUE.42 with \\"quotes\\"';
      const line = redact(`body {"client_id":"abc", "${name}" : "${secret}","n":1}`);
      expect(line).toBe(`body {"client_id":"abc", "${name}" : "[redacted]","n":1}`);
    },
  );

  it("removes opaque halves joined by ~ even without a JWT", () => {
    const r = "A1b2C3d4E5f6G7h8I9j0K1l2";
    const line = redact(`refresh ${r}~${r.toLowerCase()} failed`);
    expect(line).toBe("refresh [redacted] failed");
  });

  it("stays linear on long runs without a separator", () => {
    const started = performance.now();
    redact(`${"a".repeat(200_000)} ${"eyJ".repeat(50_000)}`);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("removes every secret parameter of one query string", () => {
    const line = redact("redirect to http://127.0.0.1:4000/cb?code=abc123&state=xyz789&iss=https%3A%2F%2Fgw.example");
    expect(line).toBe("redirect to http://127.0.0.1:4000/cb?code=[redacted]&state=[redacted]&iss=https%3A%2F%2Fgw.example");
  });

  it("keeps parameters whose names only end like a secret one", () => {
    const line = "error_code=E42 code_challenge=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
    expect(redact(line)).toBe(line);
  });
});

describe("createLogger", () => {
  it("redacts every line, including the details of an error", async () => {
    const lines: string[] = [];
    const log = createLogger((l) => lines.push(l));
    const { access_token } = await realTokens();
    log.info("GET /cb?code=abc123");
    log.error("token exchange failed", new Error(`upstream refused Bearer ${access_token}`, { cause: new Error("client_secret=hunter2") }));
    const all = lines.join("\n");
    expect(lines).toHaveLength(2);
    expect(all).not.toContain("abc123");
    expect(all).not.toContain("hunter2");
    for (const piece of pieces(access_token)) expect(all).not.toContain(piece);
    expect(lines[1]).toMatch(/ error token exchange failed: Error: upstream refused Bearer \[redacted\]/);
  });
});
