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

/** Refuse without counting when the subject is already over the limit (events counted on failure only). */
export async function ensureUnder(store: Store, rule: RateRule, subject: string): Promise<void> {
  if (((await store.get<number>(keys.rateLimit(rule.name, subject))) ?? 0) >= rule.limit) throw tooMany(rule);
}

/** Count one failure toward the rule. */
export async function recordFailure(store: Store, rule: RateRule, subject: string): Promise<void> {
  await count(store, rule, subject);
}
