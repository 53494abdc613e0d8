import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { chromium, type Browser } from "playwright-core";

/**
 * The system Chromium (Debian's `chromium` package): `CHROMIUM_PATH`, else `chromium` or
 * `chromium-browser` on PATH. Throws with the install command when there is none, so the browser
 * tests fail instead of skipping. Playwright never downloads a browser here.
 */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = env.CHROMIUM_PATH
    ? [env.CHROMIUM_PATH]
    : (env.PATH ?? "").split(delimiter).flatMap((dir) => (dir ? [join(dir, "chromium"), join(dir, "chromium-browser")] : []));
  const found = candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found)
    throw new Error(
      env.CHROMIUM_PATH
        ? `CHROMIUM_PATH=${env.CHROMIUM_PATH} is not an executable file`
        : "no chromium on PATH: run `sudo apt-get install -y chromium` (Debian/Ubuntu) or set CHROMIUM_PATH",
    );
  return found;
}

/** Headless Chromium; --no-sandbox because CI and the dev containers run as root. */
export const launchChromium = async (): Promise<Browser> => chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox"] });
