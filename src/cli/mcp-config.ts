import { chmodSync, readFileSync, writeFileSync } from "node:fs";
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
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}
