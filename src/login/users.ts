import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "../config.js";
import { hashPasswordSync, parsePasswordHash, type GatewayUser } from "./passwords.js";

/** Who may sign in on Screen 1, and where the passwords came from (for the start-up banner). */
export interface LoginConfig {
  users: readonly GatewayUser[];
  passwordSource: "environment" | "hash" | "users-file" | "generated";
  /** The users file read, when passwordSource is "users-file". */
  usersFile?: string;
  /** Only when generated: printed once on the terminal, never on a page or in a log. */
  generatedPassword?: string;
}

export interface LoginSources {
  /** MCP_GATEWAY_USERNAME / --username, undefined when not given. */
  username: string | undefined;
  password: string | undefined;
  passwordHash: string | undefined;
  usersFile: string | undefined;
}

const USERNAME = /^[^\s:]{1,100}$/;

/** Build the login from exactly one source; messages name the variable and never repeat a secret. */
export function loadLogin(sources: LoginSources): LoginConfig {
  const given = (["password", "passwordHash", "usersFile"] as const).filter((k) => sources[k] !== undefined);
  if (given.length > 1)
    throw new ConfigError(
      "give only one of MCP_GATEWAY_PASSWORD_HASH, --users-file (MCP_GATEWAY_USERS_FILE) and MCP_GATEWAY_PASSWORD: they all set the gateway login",
    );
  if (sources.usersFile !== undefined) {
    if (sources.username !== undefined)
      throw new ConfigError("--username (MCP_GATEWAY_USERNAME) does not go with --users-file: the users file names the users");
    return { users: readUsersFile(sources.usersFile), passwordSource: "users-file", usersFile: sources.usersFile };
  }
  const username = sources.username ?? "admin";
  if (!USERNAME.test(username)) throw new ConfigError("--username (MCP_GATEWAY_USERNAME) must be 1 to 100 characters without spaces or colons");
  if (sources.passwordHash !== undefined) {
    if (!parsePasswordHash(sources.passwordHash))
      throw new ConfigError("MCP_GATEWAY_PASSWORD_HASH is not a scrypt hash: make one with `mcp-oauth-gateway hash-password`");
    return { users: [{ username, passwordHash: sources.passwordHash }], passwordSource: "hash" };
  }
  if (sources.password !== undefined) return { users: [{ username, passwordHash: hashPasswordSync(sources.password) }], passwordSource: "environment" };
  const generatedPassword = randomBytes(18).toString("base64url");
  return { users: [{ username, passwordHash: hashPasswordSync(generatedPassword) }], passwordSource: "generated", generatedPassword };
}

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
