import { randomBytes } from "node:crypto";
import { hashPasswordSync, parsePasswordHash } from "../login/passwords.js";
import { readUsersFile, USERNAME, type LoginConfig } from "../login/users.js";
import { ConfigError } from "./errors.js";
import type { Reader } from "./options.js";

/** Build the login from exactly one source; messages name the variable and never repeat a secret. */
export function loadLogin(read: Reader): LoginConfig {
  const [password, passwordHash, usersFile] = [read.given("password"), read.given("password-hash"), read.given("users-file")];
  if ([password, passwordHash, usersFile].filter((given) => given !== undefined).length > 1)
    throw new ConfigError(
      "give only one of MCP_GATEWAY_PASSWORD_HASH, --users-file (MCP_GATEWAY_USERS_FILE) and MCP_GATEWAY_PASSWORD: they all set the gateway login",
    );
  if (usersFile !== undefined) {
    if (read.given("username") !== undefined)
      throw new ConfigError("--username (MCP_GATEWAY_USERNAME) does not go with --users-file: the users file names the users");
    return { users: readUsersFile(usersFile), passwordSource: "users-file", usersFile };
  }
  const username = read.value("username");
  if (!USERNAME.test(username)) throw new ConfigError("--username (MCP_GATEWAY_USERNAME) must be 1 to 100 characters without spaces or colons");
  if (passwordHash !== undefined) {
    if (!parsePasswordHash(passwordHash))
      throw new ConfigError("MCP_GATEWAY_PASSWORD_HASH is not a scrypt hash: make one with `mcp-oauth-gateway hash-password`");
    return { users: [{ username, passwordHash }], passwordSource: "hash" };
  }
  if (password !== undefined) return { users: [{ username, passwordHash: hashPasswordSync(password) }], passwordSource: "environment" };
  const generatedPassword = randomBytes(18).toString("base64url");
  return { users: [{ username, passwordHash: hashPasswordSync(generatedPassword) }], passwordSource: "generated", generatedPassword };
}
