import type { Clock } from "./clock.js";
import { sha256 } from "./crypto.js";
import { OAuthError } from "./errors.js";
import { keys, type Store } from "./store/store.js";

/** A fixed-window limit on one kind of event per subject (an address, a user). */
export interface RateRule {
  name: string;
  limit: number;
  windowSeconds: number;
  /** What the person or client reads when over the limit. */
  message: string;
}

export const RATE_RULES = {
  /** Registrations per client address: real clients register once per server. */
  register: { name: "register", limit: 60, windowSeconds: 600, message: "Too many client registrations from this address." },
  /** Authorization requests per address: each stores a pending request until it is used or expires. */
  authorize: { name: "authorize", limit: 60, windowSeconds: 600, message: "Too many sign-ins started from this address." },
  /** Screen 1 loads and posts per address. */
  login: { name: "login", limit: 120, windowSeconds: 600, message: "Too many sign-in pages from this address." },
  /** Failed sign-ins per address on Screen 1: slows password guessing to a crawl. */
  loginFailure: { name: "login-failure", limit: 10, windowSeconds: 900, message: "Too many failed sign-ins from this address." },
} as const satisfies Record<string, RateRule>;

const tooMany = (rule: RateRule) =>
  new OAuthError("temporarily_unavailable", `${rule.message} Try again in ${Math.ceil(rule.windowSeconds / 60)} minutes.`, 429, {
    "Retry-After": String(rule.windowSeconds),
  });

/** Count one event toward the rule; the count in the current window, this one included. */
const count = (store: Store, rule: RateRule, subject: string): Promise<number> => store.increment(keys.rateLimit(rule.name, subject), rule.windowSeconds);

/** Count this event; refuse it (429 + Retry-After) once the subject is over the rule's limit. */
export async function consume(store: Store, rule: RateRule, subject: string): Promise<void> {
  if ((await count(store, rule, subject)) > rule.limit) throw tooMany(rule);
}

/** Count one failure toward the rule. */
export async function recordFailure(store: Store, rule: RateRule, subject: string): Promise<void> {
  await count(store, rule, subject);
}

/** True when the subject has used up the rule (events counted on failure only). */
export const overLimit = async (store: Store, rule: RateRule, subject: string): Promise<boolean> =>
  ((await store.get<number>(keys.rateLimit(rule.name, subject))) ?? 0) >= rule.limit;

/**
 * Per-user back-off on Screen 1: from the 3rd consecutive failure for one user name, the next attempt
 * waits 1 s, then 2 s, 4 s… up to 15 minutes after the last failure. A success clears it. The user name
 * is keyed by its hash, and unknown names back off exactly like real ones.
 */
export const USER_BACKOFF = { freeFailures: 2, firstWaitSeconds: 1, maxWaitSeconds: 900, memorySeconds: 86_400 } as const;

const failuresKey = (user: string) => keys.rateLimit("login-user", sha256(user));
const lastFailureKey = (user: string) => keys.rateLimit("login-user-last", sha256(user));

export const backoffSeconds = (failures: number): number =>
  failures <= USER_BACKOFF.freeFailures
    ? 0
    : Math.min(USER_BACKOFF.firstWaitSeconds * 2 ** (failures - USER_BACKOFF.freeFailures - 1), USER_BACKOFF.maxWaitSeconds);

/** Seconds this user name must still wait before the next attempt; 0 when it may try now. */
export async function userBackoff(store: Store, clock: Clock, user: string): Promise<number> {
  const failures = (await store.get<number>(failuresKey(user))) ?? 0;
  const wait = backoffSeconds(failures);
  if (wait === 0) return 0;
  const last = (await store.get<number>(lastFailureKey(user))) ?? 0;
  return Math.max(0, Math.ceil((last + wait * 1000 - clock.now()) / 1000));
}

/** Count one failed sign-in for this user name (atomic across instances) and when it happened. */
export async function recordUserFailure(store: Store, clock: Clock, user: string): Promise<void> {
  await store.increment(failuresKey(user), USER_BACKOFF.memorySeconds);
  await store.put(lastFailureKey(user), clock.now(), USER_BACKOFF.memorySeconds);
}

/**
 * One password check at a time per user name, across instances: a burst of parallel guesses cannot
 * all pass the back-off check before the first failure is counted. Undefined when one is running.
 */
export async function claimUserAttempt(store: Store, user: string): Promise<{ release: () => Promise<void> } | undefined> {
  const key = keys.rateLimit("login-user-busy", sha256(user));
  if (!(await store.add(key, 1, 10))) return undefined;
  return { release: () => store.delete(key) };
}

export async function clearUserFailures(store: Store, user: string): Promise<void> {
  await store.delete(failuresKey(user));
  await store.delete(lastFailureKey(user));
}
