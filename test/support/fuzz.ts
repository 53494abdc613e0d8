import { Socket } from "node:net";
import { REDIRECT_URI } from "./oauth-steps.js";

/** Malformed requests for every gateway endpoint, from a fixed-seed PRNG (docs/security.md HI1). */

/** mulberry32: a fixed-seed PRNG, so a failure replays request for request. */
export function mulberry32(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Fuzzed {
  endpoint: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Sent byte for byte on a raw socket (header injection, broken framing), bypassing any client's checks. */
  raw?: Buffer;
  /** The path parameter is percent-encoding decodeURIComponent refuses (docs/security.md HI10). */
  malformedParam?: boolean;
}

export interface Known {
  clientId: string;
  accessToken: string;
}

/** Every endpoint, with the path template the summary counts it under. */
export const ENDPOINTS: readonly [string, string][] = [
  ["GET", "/.well-known/oauth-protected-resource"],
  ["GET", "/.well-known/oauth-protected-resource/mcp"],
  ["GET", "/.well-known/oauth-authorization-server"],
  ["GET", "/.well-known/openid-configuration"],
  ["POST", "/register"],
  ["GET", "/register/:id"],
  ["PUT", "/register/:id"],
  ["DELETE", "/register/:id"],
  ["OPTIONS", "/register/:id"],
  ["GET", "/authorize"],
  ["GET", "/login"],
  ["POST", "/login"],
  ["GET", "/upstream/callback"],
  ["GET", "/upstream/callback/:name"],
  ["GET", "/upstream/client-metadata/:name.json"],
  ["GET", "/authorize/:name"],
  ["POST", "/token"],
  ["POST", "/revoke"],
  ["POST", "/introspect"],
  ["POST", "/mcp"],
  ["GET", "/mcp"],
  ["DELETE", "/mcp"],
  ["POST", "/mcp/:name"],
  ["GET", "/.well-known/oauth-protected-resource/mcp/:name"],
  ["GET", "/healthz"],
  ["GET", "/readyz"],
  ["GET", "/:unknown"],
];

/** Percent-encodings decodeURIComponent refuses: truncated, not hex, overlong, a lone surrogate, not UTF-8, `%u`. */
export const MALFORMED_ENCODINGS = ["%", "%zz", "%E0%A4%A", "a%2", "%C0%AF", "%ED%A0%80", "%FF%FE", "%uD800", "%%30", "%E0%A4%A4%"];

/** Whether decodeURIComponent refuses a path segment, as Express's router does when it decodes a parameter. */
export const isMalformed = (segment: string): boolean => {
  try {
    decodeURIComponent(segment);
    return false;
  } catch {
    return true;
  }
};

const PARAMS = [
  "client_id",
  "redirect_uri",
  "response_type",
  "code_challenge",
  "code_challenge_method",
  "state",
  "scope",
  "resource",
  "request",
  "code",
  "grant_type",
  "code_verifier",
  "refresh_token",
  "token",
  "token_type_hint",
  "client_secret",
  "csrf",
  "decision",
  "username",
  "password",
  "error",
  "iss",
  "redirect_uris",
  "a[b]",
  "__proto__",
  "constructor",
];

export function generator(rand: () => number, known: Known) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rand() < p;
  const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(0x21 + int(94))).join("");
  const value = (): string =>
    pick([
      () => "",
      () => ascii(1 + int(40)),
      () => "x".repeat(2_000 + int(20_000)),
      () => pick(["%", "%zz", "%C0%AF", "%FF%FE", "%E0%A4%A", "%00", "%0d%0aSet-Cookie:%20x=1", "%uD800", "%252e%252e%252f"]),
      () => known.clientId,
      () => REDIRECT_URI,
      () =>
        pick(["code", "token", "S256", "plain", "authorization_code", "refresh_token", "approve", "deny", "javascript:alert(1)", "https://evil.example/cb"]),
      () => `${ascii(20)}~${ascii(30)}`,
      () => `eyJ${ascii(30)}.eyJ${ascii(40)}.${ascii(20)}`,
      () => "\u{1F600}\u202E\uFEFF\u0000",
      () => String(-1e308 * int(3)),
    ])();
  const query = () =>
    Array.from({ length: int(8) }, () => `${chance(0.9) ? pick(PARAMS) : ascii(5)}=${chance(0.7) ? encodeURIComponent(value()) : value()}`).join("&");
  const jsonBody = (): string =>
    pick([
      () => "{",
      () => "",
      () => "null",
      () => "[]",
      () => `"${ascii(20)}"`,
      () => "[".repeat(20_000) + "]".repeat(20_000),
      () =>
        JSON.stringify({
          redirect_uris: pick([[REDIRECT_URI], REDIRECT_URI, [1, null], [{}], [], [value()]]),
          token_endpoint_auth_method: pick(["none", "client_secret_basic", 7, null, ascii(8)]),
        }),
      () =>
        JSON.stringify({
          redirect_uris: [REDIRECT_URI],
          grant_types: pick([["authorization_code"], "x", [[]], [value()]]),
          client_name: pick([value(), 5, {}, []]),
          scope: value(),
        }),
      () =>
        JSON.stringify({
          jsonrpc: "2.0",
          id: pick([1, null, "x", {}, []]),
          method: pick(["initialize", "tools/call", "tools/list", value(), 5]),
          params: pick([{}, [], null, value()]),
        }),
      () => `{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"redirect_uris":["${REDIRECT_URI}"]}`,
      () => `{"a":${"1".repeat(400)}e999999}`,
    ])();
  const authorization = (): Record<string, string> =>
    chance(0.4)
      ? {}
      : {
          authorization: pick([
            () => `Bearer ${value()}`,
            () => `Bearer ${flipped(known.accessToken)}`,
            () => `bearer ${known.accessToken.replace("~", "~~")}`,
            () => `Basic ${Buffer.from(`${value()}:${value()}`).toString("base64")}`,
            () => `Basic ${Buffer.from(`${known.clientId}:%zz`).toString("base64")}`,
            () => `Basic ${ascii(30)}`,
            () => pick(["Bearer", "Basic", "Digest x", "Bearer  ", `Bearer ${"a".repeat(7_000)}`]),
          ])(),
        };
  const contentType = () =>
    pick([
      "application/json",
      "application/x-www-form-urlencoded",
      "text/plain",
      "multipart/form-data; boundary=x",
      "application/json; charset=latin1",
      "application/x-www-form-urlencoded; charset=utf-16",
      "application/json; charset=utf-8; charset=utf-8",
      ascii(12),
    ]);
  const rawRequest = (path: string): Buffer =>
    Buffer.from(
      pick([
        `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Injected: a\rb\r\n\r\n`,
        `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Injected: a\nSet-Cookie: x=1\r\n\r\n`,
        `GET ${path} HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n`,
        `GET ${path} HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef`,
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
        `GET ${path}\u00ff\u0000 HTTP/1.1\r\nHost: x\r\n\r\n`,
        `GET ${path} HTTP/9.9\r\nHost: x\r\n\r\n`,
        `${ascii(8)} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`,
        `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u0000\u00ff\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\na=\u00ff\u00fe%\u00c0b`,
      ]),
      "latin1",
    );

  // a path parameter: a known value, percent-encoding that does not decode (alone or inside other text), or anything encoded
  const pathParam = (knownValue: string): string =>
    pick([
      () => knownValue,
      () => pick(MALFORMED_ENCODINGS),
      () => `${ascii(int(6)).replace(/[?#%/]/g, "")}${pick(MALFORMED_ENCODINGS)}${ascii(int(6)).replace(/[?#%/]/g, "")}`,
      () => encodeURIComponent(value()).slice(0, 300),
    ])();

  return (): Fuzzed => {
    const [method0, template] = pick(ENDPOINTS);
    const path = template
      .replace(":id", pathParam(known.clientId))
      .replace(":name", pathParam("github"))
      .replace(":unknown", pick(["x", "..%2f..%2fetc%2fpasswd", "%zz", "mcp/", "MCP", "register/", "token.json", ascii(10).replace(/[?#%]/g, "")]));
    const method = chance(0.1) ? pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND"]) : method0;
    const endpoint = `${method0} ${template}`;
    const malformedParam = template.includes("/:") && !template.includes(":unknown") && path.split("/").some(isMalformed);
    if (chance(0.02))
      return {
        endpoint,
        method,
        path,
        headers: {},
        raw: Buffer.from(`${method} ${path}?${"q=".padEnd(17_000 + int(10_000), "a")} HTTP/1.1\r\nHost: x\r\n\r\n`),
        malformedParam,
      };
    if (chance(0.04)) return { endpoint, method, path, headers: {}, raw: rawRequest(path), malformedParam };
    const url = chance(0.6) ? `${path}?${query()}` : path;
    const headers: Record<string, string> = { ...authorization() };
    if (chance(0.3)) headers.origin = pick(["null", "http://evil.example", "http://localhost:6274", ascii(10)]);
    if (chance(0.3)) headers.cookie = pick([`mcp-gateway=s%3A${ascii(20)}.${ascii(10)}`, `mcp-gateway=${value()}`, "a=%zz; b", ascii(30)]);
    if (chance(0.3)) headers["x-forwarded-for"] = pick([`10.${int(256)}.${int(256)}.${int(256)}`, ascii(10), "1.2.3.4, , ,", `::ffff:${int(9)}`]);
    if (chance(0.2)) headers["mcp-session-id"] = value().replace(/[^\x21-\x7e]/g, "");
    if (chance(0.1)) headers["mcp-protocol-version"] = pick(["2025-06-18", "1999-01-01", ascii(5)]);
    if (chance(0.05)) headers["content-encoding"] = pick(["gzip", "deflate", "br", "identity", ascii(4)]);
    // what an HTTP client cannot put in a header (CR, LF, NUL, non-Latin-1) goes through the raw socket instead
    for (const [name, v] of Object.entries(headers)) headers[name] = v.replace(/[^\x20-\x7e]/g, "");
    if (method === "GET" || method === "HEAD" || method === "DELETE" || method === "OPTIONS" || chance(0.1))
      return { endpoint, method, path: url, headers, malformedParam };
    const formLike = template !== "/register" && template !== "/register/:id" && !template.startsWith("/mcp");
    headers["content-type"] = chance(0.7) ? (formLike ? "application/x-www-form-urlencoded" : "application/json") : contentType();
    const body =
      formLike && chance(0.7)
        ? pick([query, () => `${query()}&${query()}`, () => "\u00ff\u00fe=%C0", () => "a=1&".repeat(100), () => jsonBody()])()
        : jsonBody();
    return { endpoint, method, path: url, headers, body: Buffer.from(body, chance(0.1) ? "latin1" : "utf8"), malformedParam };
  };
}

/** The token with one character of its JWT payload changed: well-formed, and invalid. */
const flipped = (token: string): string => {
  const i = token.indexOf(".") + 8;
  return `${token.slice(0, i)}${token[i] === "A" ? "B" : "A"}${token.slice(i + 1)}`;
};

/** One raw exchange: the status line the server answered, or 0 when it closed without one. */
export function sendRaw(port: number, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = "";
    const done = () => {
      socket.destroy();
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0));
    };
    socket.setTimeout(1_000, done); // a request whose body never completes is (rightly) waited for
    socket.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
      if (answer.includes("\r\n")) done();
    });
    socket.on("error", done).on("close", done);
    socket.connect(port, "127.0.0.1", () => socket.write(bytes));
  });
}
