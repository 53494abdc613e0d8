import type { Clock } from "../clock.js";
import type { SimApp } from "./options.js";
import { authorizationCode, mintTokenString, randomHex } from "./tokens.js";

export const CODE_TTL_MS = 600_000;
export const USER_TOKEN_TTL_S = 28_800;
export const REFRESH_TOKEN_TTL_S = 15_811_200;

export interface AccessTokenRecord {
  /** Authorization id as shown by the /applications API. */
  id: number;
  token: string;
  kind: SimApp["kind"];
  clientId: string;
  userId: number;
  scopes: string[];
  createdAt: number;
  expiresAt: number | null;
  refreshToken?: string;
}

export interface RefreshTokenRecord {
  token: string;
  clientId: string;
  userId: number;
  accessToken: string;
  expiresAt: number;
}

export interface CodeRecord {
  code: string;
  clientId: string;
  userId: number;
  /** As sent to authorize, or null when it was omitted. */
  redirectUri: string | null;
  scopes: string[];
  codeChallenge?: string;
  expiresAt: number;
  used: boolean;
}

export interface PendingConsent {
  id: string;
  clientId: string;
  userId: number;
  redirectTo: string;
  redirectUri: string | null;
  scopes: string[];
  codeChallenge?: string;
  state?: string;
  expiresAt: number;
}

export interface MintedTokens {
  access: AccessTokenRecord;
  refresh?: RefreshTokenRecord;
}

/** All upstream grant state. Every method is synchronous, so check-and-consume is atomic. */
export class GrantStore {
  readonly #clock: Clock;
  readonly #longTokens: boolean;
  readonly #codes = new Map<string, CodeRecord>();
  readonly #access = new Map<string, AccessTokenRecord>();
  readonly #refresh = new Map<string, RefreshTokenRecord>();
  readonly #grants = new Map<string, string[]>();
  readonly #pending = new Map<string, PendingConsent>();
  readonly issued = { access: [] as string[], refresh: [] as string[] };
  #nextAuthorizationId = 1;

  constructor(clock: Clock, longTokens: boolean) {
    this.#clock = clock;
    this.#longTokens = longTokens;
  }

  issueCode(input: Omit<CodeRecord, "code" | "expiresAt" | "used">): CodeRecord {
    const record = { ...input, code: authorizationCode(), expiresAt: this.#clock.now() + CODE_TTL_MS, used: false };
    this.#codes.set(record.code, record);
    return record;
  }

  /** A code that can still be redeemed: known, unused, unexpired. */
  liveCode(code: string): CodeRecord | undefined {
    const record = this.#codes.get(code);
    if (!record || record.used || this.#clock.now() >= record.expiresAt) return undefined;
    return record;
  }

  consumeCode(record: CodeRecord): void {
    record.used = true;
  }

  mintUserTokens(app: SimApp, userId: number, scopes: string[]): MintedTokens {
    const now = this.#clock.now();
    const expiring = app.kind === "github_app" && app.expiringUserTokens !== false;
    const access: AccessTokenRecord = {
      id: this.#nextAuthorizationId++,
      token: mintTokenString(app.kind === "oauth_app" ? "gho_" : "ghu_", this.#longTokens),
      kind: app.kind,
      clientId: app.clientId,
      userId,
      scopes: app.kind === "oauth_app" ? scopes : [],
      createdAt: now,
      expiresAt: expiring ? now + USER_TOKEN_TTL_S * 1000 : null,
    };
    this.#storeAccess(access);
    if (!expiring) return { access };
    const refresh: RefreshTokenRecord = {
      token: mintTokenString("ghr_", this.#longTokens),
      clientId: app.clientId,
      userId,
      accessToken: access.token,
      expiresAt: now + REFRESH_TOKEN_TTL_S * 1000,
    };
    access.refreshToken = refresh.token;
    this.#refresh.set(refresh.token, refresh);
    this.issued.refresh.push(refresh.token);
    return { access, refresh };
  }

  findAccess(token: string): AccessTokenRecord | undefined {
    const record = this.#access.get(token);
    if (!record) return undefined;
    if (record.expiresAt !== null && this.#clock.now() >= record.expiresAt) return undefined;
    return record;
  }

  /** docs refreshing-user-access-tokens: the used refresh token and its access token stop working at once. */
  rotateRefresh(token: string, app: SimApp): MintedTokens | undefined {
    const record = this.#refresh.get(token);
    if (!record || record.clientId !== app.clientId || this.#clock.now() >= record.expiresAt) return undefined;
    this.#refresh.delete(token);
    this.#access.delete(record.accessToken);
    return this.mintUserTokens(app, record.userId, []);
  }

  revokeAccess(token: string): boolean {
    const record = this.#access.get(token);
    if (!record) return false;
    this.#access.delete(token);
    if (record.refreshToken) this.#refresh.delete(record.refreshToken);
    return true;
  }

  /** PATCH /applications/{client_id}/token: same authorization, new token string. */
  resetAccess(token: string): AccessTokenRecord | undefined {
    const record = this.findAccess(token);
    if (!record) return undefined;
    this.#access.delete(token);
    const prefix = record.kind === "oauth_app" ? "gho_" : "ghu_";
    const reset = { ...record, token: mintTokenString(prefix, this.#longTokens) };
    this.#storeAccess(reset);
    const refresh = record.refreshToken ? this.#refresh.get(record.refreshToken) : undefined;
    if (refresh) refresh.accessToken = reset.token;
    return reset;
  }

  revokeGrant(clientId: string, userId?: number): void {
    const matches = (r: { clientId: string; userId: number }): boolean => r.clientId === clientId && (userId === undefined || r.userId === userId);
    for (const [token, record] of this.#access) if (matches(record)) this.#access.delete(token);
    for (const [token, record] of this.#refresh) if (matches(record)) this.#refresh.delete(token);
    for (const [code, record] of this.#codes) if (matches(record)) this.#codes.delete(code);
    for (const key of this.#grants.keys()) {
      if (key.startsWith(`${clientId}\n`) && (userId === undefined || key === grantKey(clientId, userId))) {
        this.#grants.delete(key);
      }
    }
  }

  /** The user's remembered authorization for an app: union of every scope set approved so far. */
  grantedScopes(clientId: string, userId: number): string[] | undefined {
    return this.#grants.get(grantKey(clientId, userId));
  }

  rememberGrant(clientId: string, userId: number, scopes: string[]): void {
    const previous = this.grantedScopes(clientId, userId) ?? [];
    this.#grants.set(grantKey(clientId, userId), [...new Set([...previous, ...scopes])]);
  }

  putPending(input: Omit<PendingConsent, "id" | "expiresAt">): PendingConsent {
    const record = { ...input, id: randomHex(16), expiresAt: this.#clock.now() + CODE_TTL_MS };
    this.#pending.set(record.id, record);
    return record;
  }

  takePending(id: string): PendingConsent | undefined {
    const record = this.#pending.get(id);
    this.#pending.delete(id);
    if (!record || this.#clock.now() >= record.expiresAt) return undefined;
    return record;
  }

  #storeAccess(record: AccessTokenRecord): void {
    this.#access.set(record.token, record);
    this.issued.access.push(record.token);
  }
}

const grantKey = (clientId: string, userId: number): string => `${clientId}\n${userId}`;
