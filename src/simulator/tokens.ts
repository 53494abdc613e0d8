import { createHash, randomBytes, randomInt } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

export function base62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

export type TokenPrefix = "gho_" | "ghu_" | "ghr_";

/** Tokens are `prefix + base62(36)`; long mode emits 200–520 chars to catch length assumptions. */
export function mintTokenString(prefix: TokenPrefix, long: boolean): string {
  const total = long ? randomInt(200, 521) : 40;
  return prefix + base62(total - prefix.length);
}

export const authorizationCode = (): string => randomBytes(10).toString("hex");

export const randomHex = (bytes: number): string => randomBytes(bytes).toString("hex");

export const sha256Hex = (value: string): string => createHash("sha256").update(value).digest("hex");

export const sha256Base64url = (value: string): string => createHash("sha256").update(value).digest("base64url");
