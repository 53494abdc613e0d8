import { createHash, hkdfSync, randomBytes, timingSafeEqual, webcrypto } from "node:crypto";
import { CompactEncrypt, SignJWT, compactDecrypt, jwtVerify, type JWTPayload, type JWTVerifyOptions } from "jose";
import type { Config } from "./config/types.js";
import { storeKey, type Store } from "./store/store.js";

/** Keys derived from one master secret. `kid` names the secret so rotated-out keys still verify. */
export interface KeySet {
  kid: string;
  signing: Uint8Array;
  sealing: Uint8Array;
  /** express-session's cookie signing secret. */
  cookie: string;
}

export interface Keys {
  current: KeySet;
  /** The current set first, then the previous ones, accepted for verification only. */
  all: readonly KeySet[];
}

const derive = (secret: string, purpose: string): Uint8Array => new Uint8Array(hkdfSync("sha256", secret, "mcp-oauth-gateway", purpose, 32));

export function deriveKeys(secret: string, previous: readonly string[] = []): Keys {
  const all = [secret, ...previous].map((s) => ({
    kid: sha256(`kid:${s}`).slice(0, 8),
    signing: derive(s, "jwt-signing-hs256"),
    sealing: derive(s, "jwe-sealing-a256gcm"),
    cookie: Buffer.from(derive(s, "session-cookie-hmac")).toString("base64url"),
  }));
  return { current: all[0]!, all };
}

export type KeySource = "environment" | "store";

const TEN_YEARS = 10 * 365 * 24 * 3600;

/**
 * The master secret: configured, else generated once and kept in the store, where every instance
 * sharing the store finds the same one (first writer wins). Previous secrets verify only.
 */
export async function loadKeys(config: Pick<Config, "secret" | "previousSecrets">, store: Store): Promise<{ keys: Keys; source: KeySource }> {
  if (config.secret) return { keys: deriveKeys(config.secret, config.previousSecrets), source: "environment" };
  await store.add(storeKey.masterSecret(), randomToken(32), TEN_YEARS);
  const secret = await store.get<string>(storeKey.masterSecret());
  if (!secret) throw new Error("the store lost the master secret it was just given");
  return { keys: deriveKeys(secret, config.previousSecrets), source: "store" };
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString("base64url");

export const sha256 = (value: string): string => createHash("sha256").update(value).digest("base64url");

/** RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))). */
export const s256 = (verifier: string): string => sha256(verifier);

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** An HS256 JWT under the current key; `kid` names it so tokens signed before a rotation still verify. */
export async function signJwt(keys: Keys, typ: string, payload: JWTPayload): Promise<string> {
  const { kid, signing } = keys.current;
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ, kid }).sign(await imported(signing, HMAC));
}

/** Throws (a jose error) unless the token is an HS256 JWT signed with one of the keys and meets `options`. */
export async function verifyJwt(keys: Keys, token: string, options: Omit<JWTVerifyOptions, "algorithms">): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, ({ kid }) => imported(keyFor(keys, kid).signing, HMAC), { ...options, algorithms: ["HS256"] });
  return payload;
}

/**
 * Seal a value with authenticated encryption (JWE dir + A256GCM). `binding` goes into the protected
 * header, which is the AEAD's additional data: a sealed half only opens together with the gateway
 * half it was issued with.
 */
export async function seal(keys: Keys, value: unknown, binding: string): Promise<string> {
  const { kid, sealing } = keys.current;
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(value)))
    .setProtectedHeader({ alg: "dir", enc: "A256GCM", kid, bnd: binding })
    .encrypt(await imported(sealing, AES_GCM));
}

export async function unseal<T>(keys: Keys, jwe: string, binding: string): Promise<T> {
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, ({ kid }) => imported(keyFor(keys, kid).sealing, AES_GCM), {
    keyManagementAlgorithms: ["dir"],
    contentEncryptionAlgorithms: ["A256GCM"],
  });
  if (protectedHeader.bnd !== binding) throw new TypeError("sealed value bound to another token");
  return JSON.parse(new TextDecoder().decode(plaintext)) as T;
}

const HMAC = { name: "HMAC", hash: "SHA-256" } as const;
const AES_GCM = { name: "AES-GCM" } as const;
const importedKeys = new WeakMap<Uint8Array, Promise<webcrypto.CryptoKey>>();

/** The raw key imported once as a non-extractable CryptoKey: jose would import a Uint8Array again on every call. */
function imported(raw: Uint8Array, algorithm: typeof HMAC | typeof AES_GCM): Promise<webcrypto.CryptoKey> {
  let key = importedKeys.get(raw);
  if (!key) {
    const usages: webcrypto.KeyUsage[] = algorithm === HMAC ? ["sign", "verify"] : ["encrypt", "decrypt"];
    key = webcrypto.subtle.importKey("raw", raw, algorithm, false, usages);
    importedKeys.set(raw, key);
  }
  return key;
}

function keyFor(keys: Keys, kid: string | undefined): KeySet {
  const found = keys.all.find((k) => k.kid === kid);
  if (!found) throw new TypeError("unknown key id");
  return found;
}
