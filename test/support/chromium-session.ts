import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { launchChromium } from "./chromium.js";

/**
 * One Chromium for the calling describe block and a fresh context per test, registered as hooks.
 * The browser is awaited by each test, so a missing Chromium fails every test instead of skipping
 * them. `problems` collects console errors (CSP violations included) and uncaught exceptions of the
 * pages `openPage` opens, except those of one other origin (the upstream's).
 */
export function chromiumSession() {
  let browser: Promise<Browser>;
  let context: BrowserContext | undefined;
  const problems: string[] = [];
  beforeAll(() => {
    browser = launchChromium();
    browser.catch(() => undefined);
  });
  afterAll(async () => (await browser.catch(() => undefined))?.close());
  beforeEach(async () => {
    context = await (await browser).newContext();
    problems.length = 0;
  });
  afterEach(() => context?.close());
  return {
    problems,
    context: (): BrowserContext => context!,
    async openPage(ignoredOrigin: string): Promise<Page> {
      const page = await context!.newPage();
      page.on("console", (m) => {
        const where = m.location().url;
        if (m.type() === "error" && !where.startsWith(ignoredOrigin)) problems.push(`${where}: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      return page;
    },
  };
}
