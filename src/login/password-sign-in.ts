import type { Clock } from "../clock.js";
import { RATE_RULES, reserveCheck, takeTurn } from "../ratelimit.js";
import type { Store } from "../store/store.js";

/** The outcome of one password sign-in on Screen 1. */
export type PasswordVerdict =
  | { user: string }
  | { wrong: true }
  /** Not checked: the address, or the address for this user name, must wait this many seconds. */
  | { wait: number; message: string };

export interface PasswordSignInDeps {
  store: Store;
  clock: Clock;
  /** The user's name when the password is right for it (constant time, an unknown user costs the same). */
  checkPassword: (username: unknown, password: unknown) => Promise<string | undefined>;
}

/**
 * Check the password under the back-off per user name and address and the per-address limit
 * (docs/security.md WP6, HI7, HI8). Nothing here asks whether the user exists: unknown names take the
 * same path and the same time.
 */
export async function passwordSignIn(deps: PasswordSignInDeps, address: string, username: unknown, password: unknown): Promise<PasswordVerdict> {
  const name = typeof username === "string" ? username.slice(0, 200) : "";
  const turn = await takeTurn(deps.store, deps.clock, name, address);
  if ("wait" in turn) return turn;
  try {
    const reserved = await reserveCheck(deps.store, deps.clock, RATE_RULES.loginFailure, address);
    if ("wait" in reserved) return reserved;
    const user = await deps.checkPassword(username, password);
    if (user) {
      // the limit is on guessing: the people behind one shared address who sign in do not use it up
      await reserved.giveBack();
      await turn.succeeded();
      return { user };
    }
    await turn.failed();
    return { wrong: true };
  } finally {
    await turn.release();
  }
}
