import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { LoginError } from "./login.js";

/** The `mcpServers` entry name for a URL: its last path segment (`/mcp/github` → github), else its host. */
export function entryName(url: string): string {
  const { hostname, pathname } = new URL(url);
  const last = pathname.split("/").filter(Boolean).pop();
  return last && last !== "mcp" ? last : hostname;
}

/**
 * Write `{ url, headers: { Authorization } }` under `mcpServers.<name>` of the JSON file at `path`,
 * keeping everything else in it; the file holds a bearer token, so it is left readable by its owner only.
 */
export function writeMcpConfig(path: string, name: string, url: string, accessToken: string): void {
  let config: Record<string, unknown> = {};
  let text: string | undefined;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new LoginError(`${path} cannot be read: ${(error as Error).message}`);
  }
  if (text !== undefined && text.trim() !== "") {
    try {
      config = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new LoginError(`${path} is not JSON: fix or move it, or write to another file.`);
    }
    if (typeof config !== "object" || config === null || Array.isArray(config)) throw new LoginError(`${path} does not hold a JSON object.`);
  }
  const servers = typeof config.mcpServers === "object" && config.mcpServers !== null ? (config.mcpServers as Record<string, unknown>) : {};
  config.mcpServers = { ...servers, [name]: { url, headers: { Authorization: `Bearer ${accessToken}` } } };
  replaceFile(path, `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * A new 0600 file beside the target, renamed over it: the token is never written into an existing file
 * that others may read (or hold open) before a chmod. A symbolic link is followed and stays a link.
 */
function replaceFile(path: string, text: string): void {
  let target = path;
  try {
    target = realpathSync(path);
  } catch {
    // not there yet: written where named
  }
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(temp, text, { mode: 0o600, flag: "wx" });
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new LoginError(`${path} cannot be written: ${(error as Error).message}`);
  }
}
