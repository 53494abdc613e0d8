import type { Clock } from "./clock.js";
import { sha256 } from "./crypto.js";
import { OAuthError } from "./errors.js";
import { storeKey, type Store } from "./store/store.js";

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
  /** Authorization requests per address: each stores a pending request until it is used or expires (its TTL: this window). */
  authorize: { name: "authorize", limit: 60, windowSeconds: 600, message: "Too many sign-ins started from this address." },
  /** Screen 1 loads and posts per address. */
  login: { name: "login", limit: 120, windowSeconds: 600, message: "Too many sign-in pages from this address." },
  /** Failed sign-ins per address on Screen 1: slows password guessing to a crawl. */
  loginFailure: { name: "login-failure", limit: 10, windowSeconds: 900, message: "Too many failed sign-ins from this address." },
  /** Device authorization requests per address (RFC 8628 §3.1): each stores a device code and a user code for their lifetime. */
  deviceAuthorization: { name: "device-authorization", limit: 60, windowSeconds: 600, message: "Too many device authorizations from this address." },
  /** /device page loads and posts per address. */
  device: { name: "device", limit: 120, windowSeconds: 600, message: "Too many device pages from this address." },
  /** RFC 8628 §5.1: wrong user codes per address; at the limit even a right one waits for the window to pass. */
  deviceCodeFailure: { name: "device-code-failure", limit: 10, windowSeconds: 900, message: "Too many wrong device codes from this address." },
  /**
   * Wrong user codes from all addresses together: one holder of a /48 has 65,536 per-address budgets. At
   * the limit no code is checked until the window passes (a right one neither: else guessing goes on).
   */
  deviceCodeFailureAll: {
    name: "device-code-failure-all",
    limit: 300,
    windowSeconds: 900,
    message: "Too many wrong device codes were tried at this gateway lately (not necessarily by you).",
  },
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
const count = (store: Store, rule: RateRule, subject: string): Promise<number> => store.increment(storeKey.rateLimit(rule.name, subject), rule.windowSeconds);

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
  const returned = storeKey.rateLimit(`${rule.name}-returned`, `${index}:${subject}`);
  const reserved = await store.increment(storeKey.rateLimit(rule.name, `${index}:${subject}`), rule.windowSeconds);
  if (reserved - ((await store.get<number>(returned)) ?? 0) > rule.limit)
    return { wait: Math.ceil(((index + 1) * windowMs - clock.now()) / 1000), message: rule.message };
  return { giveBack: async () => void (await store.increment(returned, rule.windowSeconds)) };
}

/**
 * Back-off on Screen 1 per user name and address (WP6, HI7): from the pair's 3rd failure, the next
 * attempt for that name from that address waits 1 s, then 2 s, 4 s… up to 15 minutes after the pair's
 * last failure. Only an address's own failures for the name hold it, so no one else's guesses can keep
 * the user out of their own address; a success there forgets the pair. A pair's failures are kept 24 h
 * after its last one. Pairs are keyed by hash, and unknown names back off exactly like real ones.
 */
const SIGN_IN_BACKOFF = { freeFailures: 2, firstWaitSeconds: 1, maxWaitSeconds: 900, memorySeconds: 86_400, busySeconds: 10 } as const;

/** One pair's failures and the time of its last one (ms since the epoch). */
interface PairFailures {
  failures: number;
  last: number;
}

const pairHash = (name: string, address: string) => sha256(JSON.stringify([name, address]));
const failuresKey = (name: string, address: string) => storeKey.rateLimit("login-user-address", pairHash(name, address));
const busyKey = (name: string, address: string) => storeKey.rateLimit("login-user-address-busy", pairHash(name, address));

export const backoffSeconds = (failures: number): number =>
  failures <= SIGN_IN_BACKOFF.freeFailures
    ? 0
    : Math.min(SIGN_IN_BACKOFF.firstWaitSeconds * 2 ** (failures - SIGN_IN_BACKOFF.freeFailures - 1), SIGN_IN_BACKOFF.maxWaitSeconds);

/** Seconds this address must still wait before its next attempt for this name; 0 when it may try now. */
async function pairBackoff(store: Store, clock: Clock, name: string, address: string): Promise<number> {
  const seen = await store.get<PairFailures>(failuresKey(name, address));
  if (!seen) return 0;
  return Math.max(0, Math.ceil((seen.last + backoffSeconds(seen.failures) * 1000 - clock.now()) / 1000));
}

/** The one password check running for this name from this address, across instances. */
export interface SignInTurn {
  /** The password was right: the pair's failures are forgotten. */
  succeeded(): Promise<void>;
  failed(): Promise<void>;
  release(): Promise<void>;
}

const BUSY: Wait = { wait: 1, message: "Another sign-in for this user name from this address is being checked." };
const backingOff = (wait: number): Wait => ({ wait, message: "Too many failed sign-ins for this user name from this address." });

/**
 * This address's turn to check a password for this name, or how long to wait for it. Checks run one at
 * a time per pair (a lock that expires by itself should its holder die), so parallel guesses from one
 * address cannot outrun its back-off, and the pair's record is read and rewritten only under the lock.
 */
export async function takeTurn(store: Store, clock: Clock, name: string, address: string): Promise<Wait | SignInTurn> {
  const busy = busyKey(name, address);
  if (!(await store.add(busy, 1, SIGN_IN_BACKOFF.busySeconds))) return BUSY;
  const release = () => store.delete(busy);
  let wait: number;
  try {
    wait = await pairBackoff(store, clock, name, address);
  } catch (e) {
    await release();
    throw e;
  }
  if (wait > 0) {
    await release();
    return backingOff(wait);
  }
  return {
    succeeded: () => store.delete(failuresKey(name, address)),
    failed: async () => {
      const seen = await store.get<PairFailures>(failuresKey(name, address));
      const next: PairFailures = { failures: (seen?.failures ?? 0) + 1, last: clock.now() };
      await store.put(failuresKey(name, address), next, SIGN_IN_BACKOFF.memorySeconds);
    },
    release,
  };
}
