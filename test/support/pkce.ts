import { createHash, randomBytes } from "node:crypto";

/** RFC 7636 §4.2: the S256 code challenge of `verifier`. */
export const s256 = (verifier: string): string => createHash("sha256").update(verifier).digest("base64url");

/** A fresh RFC 7636 verifier and its S256 challenge. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: s256(verifier) };
}
