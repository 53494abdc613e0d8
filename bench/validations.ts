/**
 * Gateway-token validations per second, in this process on one thread: `validateAccessToken` (what
 * every /mcp request runs) awaited in a loop on one token, with a MemoryStore for the revocation read.
 * Twice: verifying signature and seal every time, and with the gateway's verified-token cache (what
 * /mcp does once a token has been seen: expiry and revocation only). CPU time is counted too: jose's
 * WebCrypto HMAC and AES-GCM run on libuv's thread pool.
 */
import { validateAccessToken, VerifiedTokens, type ValidationContext } from "../src/grants/validate.js";

export interface Validations {
  perSecond: number;
  /** Validations per CPU-second of this process (every thread). */
  perCpuSecond: number;
}

async function loop(ctx: ValidationContext, token: string, audience: string, seconds: number): Promise<Validations> {
  for (let i = 0; i < 2000; i++) await validateAccessToken(ctx, token, audience); // warm-up
  const cpu = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  let count = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) await validateAccessToken(ctx, token, audience);
    count += 100;
  }
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { perSecond: count / elapsed, perCpuSecond: count / ((used.user + used.system) / 1e6) };
}

export async function validationsPerSecond(
  ctx: ValidationContext,
  authorization: string,
  audience: string,
  seconds: number,
): Promise<{ full: Validations; cached: Validations }> {
  const token = authorization.replace(/^Bearer /, "");
  const { verified: _, ...uncached } = ctx;
  const full = await loop(uncached, token, audience, seconds);
  const cached = await loop({ ...uncached, verified: new VerifiedTokens() }, token, audience, seconds);
  return { full, cached };
}
