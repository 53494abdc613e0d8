import { readFileSync } from "node:fs";
import { ConfigError } from "../config/errors.js";
import { parsePasswordHash, type GatewayUser } from "./passwords.js";

/** Who may sign in on Screen 1, and where the passwords came from (for the start-up banner). */
export interface LoginConfig {
  users: readonly GatewayUser[];
  passwordSource: "environment" | "hash" | "users-file" | "generated";
  /** The users file read, when passwordSource is "users-file". */
  usersFile?: string;
  /** Only when generated: printed once on the terminal, never on a page or in a log. */
  generatedPassword?: string;
}

/** A gateway user name: 1 to 100 characters without whitespace or a colon (which ends the name in a users file line). */
export const USERNAME = /^[^\s:]{1,100}$/;

/** `username:hash` lines; `#` comments and blank lines are skipped. */
export function readUsersFile(path: string): GatewayUser[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new ConfigError(`--users-file ${path} cannot be read: give a readable file of username:hash lines`);
  }
  const users: GatewayUser[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    const username = line.slice(0, colon);
    const passwordHash = line.slice(colon + 1);
    const where = `--users-file ${path} line ${index + 1}`;
    if (colon < 1 || !USERNAME.test(username) || !parsePasswordHash(passwordHash))
      throw new ConfigError(`${where} is not "username:scrypt-hash": make hashes with \`mcp-oauth-gateway hash-password\``);
    if (users.some((u) => u.username === username)) throw new ConfigError(`${where} names user "${username}" a second time`);
    users.push({ username, passwordHash });
  }
  if (users.length === 0) throw new ConfigError(`--users-file ${path} lists no users: add username:hash lines`);
  return users;
}

/** The banner's login lines: who can sign in and where the password comes from; the password only when generated. */
export function describeLogin(login: LoginConfig): { login: string; password?: string } {
  const first = login.users[0]?.username ?? "";
  switch (login.passwordSource) {
    case "users-file":
      return { login: `${login.users.length} user${login.users.length === 1 ? "" : "s"} from users file ${login.usersFile ?? ""}` };
    case "hash":
      return { login: `${first}   (password from MCP_GATEWAY_PASSWORD_HASH)` };
    case "environment":
      return { login: `${first}   (password from MCP_GATEWAY_PASSWORD)` };
    case "generated":
      return { login: first, password: `${login.generatedPassword ?? ""}   (generated for this run: set MCP_GATEWAY_PASSWORD_HASH to choose one)` };
  }
}
