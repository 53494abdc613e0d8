/** A worker that lived this long before it ended was healthy: the next one starts at once. */
export const HEALTHY_MS = 60_000;
/** The first wait after a worker ended young; each further early end doubles it, up to MAX_DELAY_MS. */
export const FIRST_DELAY_MS = 250;
export const MAX_DELAY_MS = 30_000;

/**
 * How long to wait before starting a worker in place of one that ended after `livedMs`, when the
 * wait before it was `previousMs`: a crash loop (a store that refuses, a bad deploy) backs off
 * exponentially instead of forking hot; a worker that ran for a minute resets the wait.
 */
export function restartDelay(previousMs: number, livedMs: number): number {
  if (livedMs >= HEALTHY_MS) return 0;
  return previousMs === 0 ? FIRST_DELAY_MS : Math.min(previousMs * 2, MAX_DELAY_MS);
}
