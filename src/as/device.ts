import { randomInt } from "node:crypto";
import { nowSeconds } from "../clock.js";
import { randomToken, seal, sha256, type Keys } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { PATHS } from "../paths.js";
import { storeKey, type Store } from "../store/store.js";

import { requestedTarget, type DeviceBinding } from "./authorize.js";
import { isClientIdUrl, resolveMetadataClient } from "./cimd.js";
import { authenticateClient, type ClientAuthDeps } from "./client-auth.js";
import { DEVICE_GRANT_CLOSED, deviceGrantClosed, type ClientCredentials } from "./clients.js";
import { DEVICE_CODE_GRANT } from "./grant-types.js";
import type { Clock } from "../clock.js";
import type { GatewayUrls } from "./metadata.js";
import type { Mount, Mounts } from "../upstream/mounts.js";

export interface DeviceAuthorizationDeps extends ClientAuthDeps {
  store: Store;
  clock: Clock;
  urls: GatewayUrls;
  mounts: Mounts;
}

/** RFC 8628 §3.2 `expires_in`: long enough to open a page elsewhere, sign in twice, and approve. */
export const DEVICE_CODE_TTL = 600;
/** RFC 8628 §3.2 `interval`, and what §3.5 `slow_down` adds to it. */
export const DEVICE_POLL_INTERVAL = 5;
export const SLOW_DOWN_STEP = 5;
/** A device authorization is kept this long past its expiry, so a late poll hears expired_token rather than invalid_grant. */
export const EXPIRED_MEMORY = DEVICE_CODE_TTL;

/**
 * RFC 8628 §6.1: 20 consonants, no vowels (no words) and none that look alike (no 0/O, 1/I/L, 5/S mix-ups
 * once case is folded); 8 of them give 20^8 ≈ 2^34.6 codes, of which a guesser sees few (docs/security.md).
 */
export const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
export const USER_CODE_LENGTH = 8;

/** A device authorization request (stored under `device:<hash of device_code>`). */
export interface DeviceAuthorization {
  clientId: string;
  scope?: string;
  resource: string;
  /** The issuer whose device authorization endpoint took the request. */
  issuer: string;
  userCode: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  /** The current polling interval (RFC 8628 §3.5: grows with each slow_down). */
  interval: number;
}

/** How the user answered (stored under `device-outcome:<hash>`, written once): the gateway code sealed to the device code, or a denial. */
export type DeviceOutcome = { approved: string } | { denied: string };

/** RFC 8628 §3.2 */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/** XXXX-XXXX, as shown and as entered most easily. */
export const formatUserCode = (code: string): string => `${code.slice(0, 4)}-${code.slice(4)}`;

/** RFC 8628 §6.1: case-insensitive, dashes and spaces ignored; undefined when it cannot be a user code at all. */
export function normalizeUserCode(input: unknown): string | undefined {
  if (typeof input !== "string" || input.length > 40) return undefined;
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  return code.length === USER_CODE_LENGTH && [...code].every((c) => USER_CODE_ALPHABET.includes(c)) ? code : undefined;
}

export const generateUserCode = (): string => Array.from({ length: USER_CODE_LENGTH }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]).join("");

/**
 * POST /device_authorization (or /device_authorization/<name> of `issuerMount`): RFC 8628 §3.1–3.2. The
 * client authenticates as at /token; the resource and scope follow /authorize's rules. `from`: the
 * sender's address as the per-address limits count it.
 */
export async function deviceAuthorization(
  body: Record<string, unknown>,
  credentials: ClientCredentials,
  deps: DeviceAuthorizationDeps,
  from: { address: string },
  issuerMount?: Mount,
): Promise<DeviceAuthorizationResponse> {
  // a client first named here by its metadata document is fetched, and counted as a new client, as /authorize does (MC26)
  if (isClientIdUrl(credentials.clientId))
    await resolveMetadataClient(credentials.clientId, {
      store: deps.store,
      clock: deps.clock,
      policy: deps.registration,
      fetch: deps.metadataFetch,
      log: deps.log,
      address: from.address,
    });
  const client = await authenticateClient(deps, credentials);
  // MC5: also a client registered before the operator narrowed redirect URIs
  if (deviceGrantClosed(deps.registration)) throw new OAuthError("unauthorized_client", DEVICE_GRANT_CLOSED);
  if (!client.grant_types.includes(DEVICE_CODE_GRANT))
    throw new OAuthError("unauthorized_client", `This client did not register the ${DEVICE_CODE_GRANT} grant.`);
  const target = requestedTarget(body, deps.mounts, issuerMount);
  if ("error" in target) throw new OAuthError(target.error, target.description);
  const deviceCode = randomToken(32);
  const codeHash = sha256(deviceCode);
  const userCode = await reserveUserCode(deps.store, codeHash);
  const record: DeviceAuthorization = {
    clientId: client.client_id,
    ...(target.scope === undefined ? {} : { scope: target.scope }),
    resource: target.mount.resource,
    issuer: issuerMount?.issuer ?? deps.urls.issuer,
    userCode,
    expiresAt: nowSeconds(deps.clock) + DEVICE_CODE_TTL,
    interval: DEVICE_POLL_INTERVAL,
  };
  await deps.store.put(storeKey.device(codeHash), record, DEVICE_CODE_TTL + EXPIRED_MEMORY);
  const verificationUri = `${deps.urls.issuer}${PATHS.device}`;
  return {
    device_code: deviceCode,
    user_code: formatUserCode(userCode),
    verification_uri: verificationUri,
    verification_uri_complete: `${verificationUri}?user_code=${formatUserCode(userCode)}`,
    expires_in: DEVICE_CODE_TTL,
    interval: DEVICE_POLL_INTERVAL,
  };
}

/** A fresh user code pointing at the device code: `add`, so two live requests never share one. */
async function reserveUserCode(store: Store, codeHash: string): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const userCode = generateUserCode();
    if (await store.add(storeKey.userCode(userCode), codeHash, DEVICE_CODE_TTL)) return userCode;
  }
  throw new OAuthError("temporarily_unavailable", "No free user code was found; try again.", 503);
}

/**
 * The device authorization a user code names, taken: a user code starts one browser sign-in only.
 * Undefined when it is unknown, used or expired.
 */
export async function claimUserCode(store: Store, now: number, userCode: string): Promise<{ record: DeviceAuthorization; binding: DeviceBinding } | undefined> {
  const codeHash = await store.take<string>(storeKey.userCode(userCode));
  const record = codeHash === undefined ? undefined : await store.get<DeviceAuthorization>(storeKey.device(codeHash));
  if (!codeHash || !record || record.expiresAt <= now) return undefined;
  return { record, binding: { codeHash, userCode: formatUserCode(userCode) } };
}

/** The user's answer for the device: first writer wins, so a finished authorization never changes. */
export async function settleDevice(ctx: { store: Store; keys: Keys }, binding: DeviceBinding, answer: { code: string } | { denied: string }): Promise<void> {
  const outcome: DeviceOutcome = "code" in answer ? { approved: await seal(ctx.keys, answer.code, binding.codeHash) } : answer;
  await ctx.store.add(storeKey.deviceOutcome(binding.codeHash), outcome, DEVICE_CODE_TTL + EXPIRED_MEMORY);
}
