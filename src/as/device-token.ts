import { nowSeconds, type Clock } from "../clock.js";
import { sha256, unseal, type Keys } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { redeemCode, type RedeemedCode } from "../grants/codes.js";
import type { TokenContext } from "../grants/format.js";
import { storeKey, type Store } from "../store/store.js";
import type { ClientRecord } from "./clients.js";
import { optionalParam } from "./clients.js";
import { EXPIRED_MEMORY, SLOW_DOWN_STEP, type DeviceAuthorization, type DeviceOutcome } from "./device.js";

type DeviceTokenDeps = Pick<TokenContext, "store" | "clock" | "keys" | "accessTokenTtl" | "refreshTokenTtl">;

/**
 * POST /token with the device_code grant (RFC 8628 §3.4–3.5): while the user has not answered,
 * authorization_pending, or slow_down to a client polling within its interval; once approved, the
 * gateway code the browser step minted, redeemed as /token redeems any code: single use, and a
 * second redemption revokes what the first issued (OAuth 2.1 §4.1.3).
 */
export async function redeemDeviceCode(body: Record<string, unknown>, client: ClientRecord, deps: DeviceTokenDeps): Promise<RedeemedCode> {
  const deviceCode = optionalParam(body, "device_code");
  if (!deviceCode) throw new OAuthError("invalid_request", "device_code is required.");
  const codeHash = sha256(deviceCode);
  const record = deviceCode.length <= 100 ? await deps.store.get<DeviceAuthorization>(storeKey.device(codeHash)) : undefined;
  if (!record) throw new OAuthError("invalid_grant", "The device_code is unknown.");
  // RFC 8628 §3.4 with RFC 6749 §5.2: a device code is bound to the client it was issued to
  if (record.clientId !== client.client_id) throw new OAuthError("invalid_grant", "The device_code was issued to another client.");
  const outcome = await deps.store.get<DeviceOutcome>(storeKey.deviceOutcome(codeHash));
  if (outcome && "denied" in outcome) throw new OAuthError("access_denied", outcome.denied);
  if (!outcome && record.expiresAt <= nowSeconds(deps.clock)) throw new OAuthError("expired_token", "The device_code has expired: request a new one.");
  // parallel polls: one passes, so an approved code is redeemed once and the others hear slow_down, not a replay
  await pollOnce(deps, codeHash, record);
  if (outcome) return redeemCode(deps, await unseal<string>(deps.keys, outcome.approved, codeHash));
  throw new OAuthError("authorization_pending", "The user has not finished yet.");
}

/**
 * RFC 8628 §3.5: one accepted poll per interval. The lock is taken atomically, so of parallel polls one
 * passes; a poll that finds it held hears slow_down, and the interval grows for every later poll.
 */
async function pollOnce(deps: { store: Store; clock: Clock; keys: Keys }, codeHash: string, record: DeviceAuthorization): Promise<void> {
  if (await deps.store.add(storeKey.devicePoll(codeHash), 1, record.interval)) return;
  const interval = record.interval + SLOW_DOWN_STEP;
  const left = record.expiresAt - nowSeconds(deps.clock);
  await deps.store.put(storeKey.device(codeHash), { ...record, interval }, Math.max(1, left + EXPIRED_MEMORY));
  await deps.store.put(storeKey.devicePoll(codeHash), 1, interval);
  throw new OAuthError("slow_down", `Polling too fast: wait at least ${interval} seconds between requests.`);
}
