import type { Clock } from "../clock.js";
import { claimUserAttempt, clearUserFailures, overLimit, RATE_RULES, recordFailure, recordUserFailure, userBackoff } from "../ratelimit.js";
import type { Store } from "../store/store.js";

/** The outcome of one password sign-in on Screen 1. */
export type PasswordVerdict =
  | { user: string }
  | { wrong: true }
  /** Not checked: the address or the user name must wait this many seconds. */
  | { wait: number; message: string };

export interface PasswordSignInDeps {
  store: Store;
  clock: Clock;
  /** The user's name when the password is right for it (constant time, an unknown user costs the same). */
  checkPassword: (username: unknown, password: unknown) => Promise<string | undefined>;
}

/** Check the password under the per-address limit and the per-user back-off (docs/security.md WP6). */
export async function passwordSignIn(deps: PasswordSignInDeps, address: string, username: unknown, password: unknown): Promise<PasswordVerdict> {
  const name = typeof username === "string" ? username.slice(0, 200) : "";
  if (await overLimit(deps.store, RATE_RULES.loginFailure, address))
    return { wait: RATE_RULES.loginFailure.windowSeconds, message: RATE_RULES.loginFailure.message };
  const wait = await userBackoff(deps.store, deps.clock, name);
  if (wait > 0) return { wait, message: "Too many failed sign-ins for this user name." };
  const attempt = await claimUserAttempt(deps.store, name);
  if (!attempt) return { wait: 1, message: "Another sign-in for this user name is being checked." };
  try {
    const user = await deps.checkPassword(username, password);
    if (user) {
      await clearUserFailures(deps.store, name);
      return { user };
    }
    await recordFailure(deps.store, RATE_RULES.loginFailure, address);
    await recordUserFailure(deps.store, deps.clock, name);
    return { wrong: true };
  } finally {
    await attempt.release();
  }
}
