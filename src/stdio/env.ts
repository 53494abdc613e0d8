import type { StdioServerConfig, Template } from "../config/types.js";
import type { StdioOwner } from "./child.js";

/**
 * The only variables of the gateway's environment a stdio server gets (MCP stdio-proxy guidance: an
 * explicit environment): where programs are, who and where the OS user is, language and time. The
 * gateway's own settings and secrets never reach it. SHELL and TERM are in the SDK's own list, which it
 * always adds (StdioClientTransport), so they are named here too.
 */
export const INHERITED_VARIABLES: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "TERM",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  // Windows: programs do not start without some of these
  "SYSTEMROOT",
  "SYSTEMDRIVE",
  "WINDIR",
  "PATHEXT",
  "COMSPEC",
  "TEMP",
  "TMP",
  "USERNAME",
  "USERPROFILE",
  "HOMEDRIVE",
  "HOMEPATH",
  "APPDATA",
  "LOCALAPPDATA",
  "PROGRAMFILES",
  "PROCESSOR_ARCHITECTURE",
];

/** The allowlisted variables that are set; a value that is a shell function definition is dropped. */
export function inheritedEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of INHERITED_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== "" && !value.startsWith("()")) kept[name] = value;
  }
  return kept;
}

/** A config string with `{{userDir}}` replaced by the process's directory. */
export const render = (template: Template, userDir: string): string => template.map((part) => (typeof part === "string" ? part : userDir)).join("");

/** The process's whole environment: the inherited variables, then the entry's `env`, then with `identityEnv` who it serves. */
export function childEnvironment(
  server: StdioServerConfig,
  inherited: Readonly<Record<string, string>>,
  owner: StdioOwner,
  userDir: string,
): Record<string, string> {
  const env: Record<string, string> = { ...inherited };
  for (const [name, template] of Object.entries(server.env)) env[name] = render(template, userDir);
  if (server.identityEnv) {
    env.MCP_GATEWAY_USER = owner.user;
    env.MCP_GATEWAY_CLIENT_ID = owner.clientId;
  }
  return env;
}
