import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";

/** No developer .env and no MCP_GATEWAY_* of the developer's shell: only what a test gives. */
export const ENV = { MCP_GATEWAY_ENV_FILE: "/dev/null" };
export const RS = ["--upstream-rs", "https://upstream.example/mcp"];

export const load = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, { ...ENV, ...env });
export const refused = (argv: string[], env: Record<string, string> = {}): string => {
  try {
    load(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`loadConfig(${JSON.stringify(argv)}) was accepted`);
};

/** A directory for the test file's files, removed after it, and a writer of env files there. */
export function scratch(): { dir: string; envFile: (text: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), "gateway-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const envFile = (text: string): string => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.env`);
    writeFileSync(path, text);
    return path;
  };
  return { dir, envFile };
}
