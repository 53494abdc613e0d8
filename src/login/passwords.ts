import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Gateway passwords as self-describing scrypt hashes (RFC 7914):
 * `scrypt$ln=<log2 N>,r=<block size>,p=<parallelism>$<salt b64url>$<hash b64url>`.
 */
export interface PasswordHash {
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** N = 2^14, r = 8: 16 MiB and about 40 ms per check on the reference machine (docs/security.md WP6). */
export type Cost = Pick<PasswordHash, "ln" | "r" | "p">;
export const DEFAULT_COST: Readonly<Cost> = { ln: 14, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Bounds on parameters read from a hash, so a typo in a users file cannot stall or exhaust the process. */
const LIMITS = { ln: [10, 20], r: [1, 32], p: [1, 16] } as const;
const FORMAT = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{22,128})$/;

/** The parsed hash, or undefined when the string is not one we can check. Never echoes the input. */
export function parsePasswordHash(text: string): PasswordHash | undefined {
  const m = FORMAT.exec(text);
  if (!m) return undefined;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const within = (v: number, [lo, hi]: readonly [number, number]) => v >= lo && v <= hi;
  if (!within(ln, LIMITS.ln) || !within(r, LIMITS.r) || !within(p, LIMITS.p)) return undefined;
  return { ln, r, p, salt: Buffer.from(m[4]!, "base64url"), hash: Buffer.from(m[5]!, "base64url") };
}

const options = ({ ln, r, p }: Cost): ScryptOptions => ({ N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r * p });

const format = (h: PasswordHash): string => `scrypt$ln=${h.ln},r=${h.r},p=${h.p}$${h.salt.toString("base64url")}$${h.hash.toString("base64url")}`;

/** Hash synchronously: at start only (MCP_GATEWAY_PASSWORD), never while serving requests. */
export function hashPasswordSync(password: string, cost: Cost = DEFAULT_COST): string {
  const salt = randomBytes(SALT_BYTES);
  return format({ ...cost, salt, hash: scryptSync(password.normalize("NFC"), salt, HASH_BYTES, options(cost)) });
}

export async function hashPassword(password: string, cost: Cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return format({ ...cost, salt, hash: await derive(password, salt, HASH_BYTES, cost) });
}

const derive = (password: string, salt: Buffer, length: number, cost: Cost): Promise<Buffer> =>
  new Promise((resolve, reject) => scrypt(password.normalize("NFC"), salt, length, options(cost), (e, key) => (e ? reject(e) : resolve(key))));

/** Constant-time check of one password against one parsed hash, on the libuv pool (the event loop stays free). */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt, stored.hash.length, stored);
  return timingSafeEqual(candidate, stored.hash);
}

export interface GatewayUser {
  username: string;
  passwordHash: string;
}

/**
 * Who may sign in. An unknown user name costs one scrypt against a dummy hash of the same cost as a
 * real user's, so timing does not tell which names exist. Resolves to the user's name, or undefined.
 */
export function passwordChecker(users: readonly GatewayUser[]): (username: unknown, password: unknown) => Promise<string | undefined> {
  const byName = new Map(users.map((u) => [u.username, parsePasswordHash(u.passwordHash)]));
  const first = byName.values().next().value ?? { ...DEFAULT_COST, salt: randomBytes(SALT_BYTES), hash: randomBytes(HASH_BYTES) };
  const dummy: PasswordHash = { ...first, salt: randomBytes(first.salt.length), hash: randomBytes(first.hash.length) };
  return async (username, password) => {
    if (typeof username !== "string" || typeof password !== "string" || password.length > 1024) return undefined;
    const stored = byName.get(username);
    const ok = await verifyPassword(password, stored ?? dummy);
    return ok && stored ? username : undefined;
  };
}
