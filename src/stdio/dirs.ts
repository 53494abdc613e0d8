import { createHash } from "node:crypto";
import { chmod, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Lowercase only: on a case-insensitive file system (macOS, Windows) "Alice" and "alice" would share a directory. */
const PLAIN_NAME = /^[a-z0-9._-]{1,64}$/;

/**
 * A gateway user's name as a directory name: kept when plain (lowercase letters, digits, ".", "_", "-",
 * not "." or ".."), else "@" and a hash of it, which no plain name can equal.
 */
export function userDirName(user: string): string {
  if (PLAIN_NAME.test(user) && user !== "." && user !== "..") return user;
  return `@${createHash("sha256").update(user, "utf8").digest("hex").slice(0, 32)}`;
}

/** Where a process works: `<dir>/<server>/<user>`, or `<dir>/<server>` for a shared server, which serves no one user. */
export const processDir = (root: string, server: string, user: string | undefined): string =>
  user === undefined ? join(root, server) : join(root, server, userDirName(user));

/** The directory and any parent it creates, each 0700 whatever the umask. */
export async function makePrivateDir(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  for (let dir = path; ; dir = dirname(dir)) {
    await chmod(dir, 0o700);
    if (dir === first || dirname(dir) === dir) break;
  }
}
