import { setTimeout as delay } from "node:timers/promises";
import type { Config } from "../config/types.js";
import { deviceLogin, LoginError } from "./login.js";
import { entryName, writeMcpConfig } from "./mcp-config.js";

/** `mcp-oauth-gateway login`: the exit code, and what goes to stdout (0) or stderr (otherwise). */
export async function loginCommand(command: NonNullable<Config["deviceLogin"]>): Promise<{ code: number; text: string }> {
  try {
    const tokens = await deviceLogin(command, {
      fetch,
      sleep: (seconds) => delay(seconds * 1000),
      tell: (line) => void process.stderr.write(`${line}\n`),
    });
    if (!command.writeConfig) return { code: 0, text: JSON.stringify(tokens, null, 2) };
    const name = command.name ?? entryName(command.url);
    writeMcpConfig(command.writeConfig, name, command.url, tokens.access_token);
    process.stderr.write(`Wrote mcpServers.${name} to ${command.writeConfig} (mode 0600).\n`);
    return { code: 0, text: "" };
  } catch (error) {
    if (error instanceof LoginError) return { code: 1, text: error.message };
    if (error instanceof TypeError) return { code: 1, text: `cannot reach the server: ${(error.cause as Error | undefined)?.message ?? error.message}` };
    throw error;
  }
}
