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

/**
 * Who a per-address limit counts: an IPv4 address (also when written IPv4-mapped), or the /64 of an
 * IPv6 address, which one subscriber usually holds whole (RFC 6177): counted by full address, one host
 * could take 2^64 fresh ones.
 */
export function addressSubject(address: string | undefined): string {
  if (!address) return "unknown";
  const plain = address.replace(/%.*$/, "").toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(plain);
  if (mapped) return mapped[1]!;
  if (!plain.includes(":")) return plain;
  const [head = "", tail] = plain.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

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

/** Not now: wait this many seconds; `message` says why. */
export interface Wait {
  wait: number;
  message: string;
}

/**
 * Reserve one password check against the rule before running it (HI8): the count is taken atomically
 * first, so parallel attempts cannot all pass before any failure is counted, and at most `limit` run.
 * Windows follow the clock (index = now / window) so that a success can give its reservation back to
 * the window it was taken from.
 */
export async function reserveCheck(store: Store, clock: Clock, rule: RateRule, subject: string): Promise<Wait | { giveBack: () => Promise<void> }> {
  const windowMs = rule.windowSeconds * 1000;
  const index = Math.floor(clock.now() / windowMs);
  const returned = keys.rateLimit(`${rule.name}-returned`, `${index}:${subject}`);
  const reserved = await store.increment(keys.rateLimit(rule.name, `${index}:${subject}`), rule.windowSeconds);
  if (reserved - ((await store.get<number>(returned)) ?? 0) > rule.limit)
    return { wait: Math.ceil(((index + 1) * windowMs - clock.now()) / 1000), message: rule.message };
  return { giveBack: async () => void (await store.increment(returned, rule.windowSeconds)) };
}

/**
 * Per-user back-off on Screen 1 (WP6, HI7): from the 3rd failure for one user name, the next attempt
 * waits 1 s, then 2 s, 4 s… up to 15 minutes after the last failure. It holds only an address that has
 * itself failed `freeFailures` times for that name in the last day, so guesses from elsewhere never
 * hold the user back on a clean address; a success forgets that address's failures. User names are
 * keyed by hash, and unknown names back off exactly like real ones.
 */
export const USER_BACKOFF = { freeFailures: 2, firstWaitSeconds: 1, maxWaitSeconds: 900, memorySeconds: 86_400, busySeconds: 10 } as const;

const nameHash = (name: string) => sha256(name);
const pairHash = (name: string, address: string) => sha256(JSON.stringify([name, address]));
const failuresKey = (name: string) => keys.rateLimit("login-user", nameHash(name));
const lastFailureKey = (name: string) => keys.rateLimit("login-user-last", nameHash(name));
const addressFailuresKey = (name: string, address: string) => keys.rateLimit("login-user-address", pairHash(name, address));

export const backoffSeconds = (failures: number): number =>
  failures <= USER_BACKOFF.freeFailures
    ? 0
    : Math.min(USER_BACKOFF.firstWaitSeconds * 2 ** (failures - USER_BACKOFF.freeFailures - 1), USER_BACKOFF.maxWaitSeconds);

/** Seconds this user name must still wait before the next attempt from a held address; 0 when it may try now. */
export async function userBackoff(store: Store, clock: Clock, name: string): Promise<number> {
  const wait = backoffSeconds((await store.get<number>(failuresKey(name))) ?? 0);
  if (wait === 0) return 0;
  const last = (await store.get<number>(lastFailureKey(name))) ?? 0;
  return Math.max(0, Math.ceil((last + wait * 1000 - clock.now()) / 1000));
}

/** One password check running for this name (and address), across instances: the lock is released after it. */
export interface SignInTurn {
  /** The password was right: this address's failures for the name are forgotten (the name's are not). */
  succeeded(): Promise<void>;
  failed(): Promise<void>;
  release(): Promise<void>;
}

const BUSY: Wait = { wait: 1, message: "Another sign-in for this user name is being checked." };
const backingOff = (wait: number): Wait => ({ wait, message: "Too many failed sign-ins for this user name." });

/**
 * This address's turn to check a password for this name, or how long to wait for it. Checks run one at
 * a time per name and address. An address held by the name's back-off also queues behind every other
 * held address (one check at a time per name), so many addresses together cannot outrun the back-off.
 */
export async function takeTurn(store: Store, clock: Clock, name: string, address: string): Promise<Wait | SignInTurn> {
  const locks: (() => Promise<void>)[] = [];
  const release = async () => void (await Promise.all(locks.splice(0).map((unlock) => unlock())));
  try {
    const wait = await queue(store, clock, name, address, locks);
    if (wait) {
      await release();
      return wait;
    }
  } catch (e) {
    await release();
    throw e;
  }
  return {
    succeeded: () => store.delete(addressFailuresKey(name, address)),
    failed: async () => {
      await store.increment(addressFailuresKey(name, address), USER_BACKOFF.memorySeconds);
      await store.increment(failuresKey(name), USER_BACKOFF.memorySeconds);
      await store.put(lastFailureKey(name), clock.now(), USER_BACKOFF.memorySeconds);
    },
    release,
  };
}

/** Take the locks this attempt needs (their releases go to `locks`); the wait instead when it may not run now. */
async function queue(store: Store, clock: Clock, name: string, address: string, locks: (() => Promise<void>)[]): Promise<Wait | undefined> {
  /** False when another check holds the lock; it expires by itself should its holder die. */
  const claim = async (key: string) => {
    if (!(await store.add(key, 1, USER_BACKOFF.busySeconds))) return false;
    locks.push(() => store.delete(key));
    return true;
  };
  if (!(await claim(keys.rateLimit("login-user-address-busy", pairHash(name, address))))) return BUSY;
  if (((await store.get<number>(addressFailuresKey(name, address))) ?? 0) < USER_BACKOFF.freeFailures) return undefined;
  // read before the name's lock, so that refused guesses never hold it, and again under it: a parallel check may just have failed
  const early = await userBackoff(store, clock, name);
  if (early > 0) return backingOff(early);
  if (!(await claim(keys.rateLimit("login-user-busy", nameHash(name))))) return BUSY;
  const wait = await userBackoff(store, clock, name);
  return wait > 0 ? backingOff(wait) : undefined;
}
