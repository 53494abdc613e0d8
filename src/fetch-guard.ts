import { lookup as dnsLookup } from "node:dns/promises";
import { isIP, type LookupFunction } from "node:net";
import { Agent, request } from "undici";
import { specialPurposeKind } from "./hosts.js";

/**
 * The SSRF guard for every URL the gateway fetches on a client's behalf (Client ID Metadata
 * Documents and the `jwks_uri` they name). https only; every address the name resolves to is checked, and the connection goes to
 * the checked address (no second DNS answer to rebind); no redirects; bounded size and time.
 */
export interface GuardOptions {
  /** Allow loopback and private addresses (`--allow-private-fetch`, tests only). Still https only. */
  allowPrivate: boolean;
  /** Extra trust anchors (PEM), for a test's own certificate authority. */
  ca?: string;
  /** Name resolution; default dns.lookup with all addresses. */
  lookup?: (hostname: string) => Promise<ResolvedAddress[]>;
  timeoutMs?: number;
  maxBytes?: number;
  accept?: string;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface GuardedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The fetch was refused before or while talking to the host; the message says why, never more. */
export class FetchRefused extends Error {
  override name = "FetchRefused";
}

export const FETCH_TIMEOUT_MS = 5000;
export const FETCH_MAX_BYTES = 5 * 1024;
/** The longest a fetched document (a client's metadata or keys) is trusted without fetching it again. */
export const MAX_CACHE_SECONDS = 24 * 3600;

/** RFC 9111 §5.2.2: max-age (capped at 24 h) unless no-store or no-cache; 0 means do not cache. */
export function cacheLifetime(cacheControl: string | string[] | undefined): number {
  const directives = [cacheControl ?? []]
    .flat()
    .join(",")
    .split(",")
    .map((d) => d.trim().toLowerCase());
  if (directives.some((d) => d === "no-store" || d === "no-cache" || d.startsWith("no-cache="))) return 0;
  const maxAge = directives.find((d) => d.startsWith("max-age="))?.slice(8);
  if (maxAge === undefined || !/^\d+$/.test(maxAge)) return 0;
  return Math.min(Number(maxAge), MAX_CACHE_SECONDS);
}

/** Why `value` is not an https URL without userinfo or fragment, of at most `maxLength` characters; undefined if it is one. */
export function httpsUrlProblem(value: unknown, maxLength: number): string | undefined {
  if (typeof value !== "string" || value.length > maxLength) return `must be a URL of at most ${maxLength} characters`;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return "is not a URL";
  }
  if (u.protocol !== "https:") return "must be an https URL";
  if (u.username || u.password) return "must not contain userinfo";
  if (u.hash || value.includes("#")) return "must not contain a fragment";
  return undefined;
}

/** Why an address is not fetched from ("a private", "a loopback" …), or undefined for a public one. */
export function addressProblem(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return "an invalid";
  const kind = specialPurposeKind(address, family === 4 ? "ipv4" : "ipv6");
  if (kind !== undefined) return kind;
  const embedded = family === 6 ? embeddedIPv4(address) : undefined;
  return embedded === undefined ? undefined : addressProblem(embedded);
}

/**
 * The IPv4 address an IPv6 address carries, so that it is judged as that address: IPv4-mapped
 * (::ffff:0:0/96, in every spelling), NAT64 (64:ff9b::/96, RFC 6052), 6to4 (2002::/16, RFC 3056) and an
 * ISATAP interface identifier (…:0:5efe:a.b.c.d, RFC 5214). IPv4-compatible (::/96, deprecated by
 * RFC 4291 §2.5.5.1), IPv4-translated (::ffff:0:0:0/96, RFC 2765), Teredo (2001::/32) and local NAT64
 * are refused whole (src/hosts.ts, SPECIAL_PURPOSE).
 */
function embeddedIPv4(address: string): string | undefined {
  const g = expandIPv6(address);
  if (!g) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && (g[5] === 0 || g[5] === 0xffff)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  if ((g[4]! & 0xfcff) === 0 && g[5] === 0x5efe) return v4(g[6]!, g[7]!);
  return undefined;
}

function expandIPv6(address: string): number[] | undefined {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -dotted[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const parse = (s: string) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const front = parse(head);
  const back = tail === undefined ? [] : parse(tail);
  const groups = tail === undefined ? front : [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

const systemLookup = async (hostname: string): Promise<ResolvedAddress[]> => dnsLookup(hostname, { all: true, verbatim: true });

/** GET one https URL through the guard. Any status comes back (a 3xx is the caller's refusal); the body is text. */
export async function guardedFetch(target: string, options: GuardOptions): Promise<GuardedResponse> {
  const url = new URL(target);
  if (url.protocol !== "https:") throw new FetchRefused("only https URLs are fetched");
  if (url.username || url.password) throw new FetchRefused("the URL must not carry credentials");
  const timeoutMs = options.timeoutMs ?? FETCH_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? FETCH_MAX_BYTES;
  const signal = AbortSignal.timeout(timeoutMs);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await withDeadline((options.lookup ?? systemLookup)(host), signal);
  if (addresses.length === 0) throw new FetchRefused(`${host} has no address`);
  for (const { address } of addresses) {
    const problem = addressProblem(address);
    if (problem && !options.allowPrivate) throw new FetchRefused(`${host} resolves to ${problem} address`);
  }
  const pinned = addresses[0]!;
  const lookup: LookupFunction = (_hostname, opts, callback) =>
    opts.all ? (callback as (e: null, a: ResolvedAddress[]) => void)(null, [pinned]) : callback(null, pinned.address, pinned.family);
  const agent = new Agent({
    connect: { lookup, timeout: timeoutMs, ...(options.ca === undefined ? {} : { ca: options.ca }) },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    pipelining: 0,
  });
  try {
    const response = await request(url, {
      method: "GET",
      headers: { accept: options.accept ?? "application/json" },
      dispatcher: agent,
      signal,
    }).catch((error: unknown) => {
      throw new FetchRefused(signal.aborted ? `no answer within ${timeoutMs / 1000} s` : `the host could not be reached (${(error as Error).message})`);
    });
    const declared = Number(response.headers["content-length"]);
    if (declared > maxBytes) {
      response.body.destroy();
      throw new FetchRefused(`the document is larger than ${maxBytes} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw new FetchRefused(`the document is larger than ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    } catch (error) {
      response.body.destroy();
      if (error instanceof FetchRefused) throw error;
      throw new FetchRefused(signal.aborted ? `no answer within ${timeoutMs / 1000} s` : "the connection failed while reading the document");
    }
    return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") };
  } finally {
    await agent.destroy();
  }
}

/**
 * MC32: all a client is told of a failed fetch, whatever the cause (the cause goes to the log), so
 * that the gateway is no oracle for which hosts answer and how.
 */
export const FETCH_FAILED = "could not be fetched";

/** A document's 200 answer, and how long its Cache-Control lets it be kept (0: not at all). */
export interface FetchedDocument {
  body: string;
  lifetime: number;
}

/**
 * GET a document a client publishes (its metadata, its keys) through the guard: its 200 answer, or
 * why there is none. Whether the body is a valid document is the caller's question, not a failure to fetch.
 */
export async function fetchDocument(url: string, options: GuardOptions): Promise<FetchedDocument | string> {
  let response: GuardedResponse;
  try {
    response = await guardedFetch(url, options);
  } catch (error) {
    if (error instanceof FetchRefused) return `could not be fetched: ${error.message}`;
    throw error;
  }
  if (response.status >= 300 && response.status < 400) return `answered with a redirect (HTTP ${response.status}), which is not followed`;
  if (response.status !== 200) return `answered HTTP ${response.status}`;
  return { body: response.body, lifetime: cacheLifetime(response.headers["cache-control"]) };
}

function withDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new FetchRefused("the name did not resolve in time"));
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, () => reject(new FetchRefused("the name does not resolve"))).finally(() => signal.removeEventListener("abort", abort));
  });
}
