import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { inheritedEnvironment } from "../stdio/env.js";
import { allowList, expand, isEntry, knownKeys, member, quote, title, type Context, type Entry } from "./entry.js";
import type { Reader } from "./options.js";
import type { StdioConfig, StdioServerConfig, Template, UpstreamConfig } from "./types.js";

type ParsedStdio = Omit<UpstreamConfig, "name" | "path" | "title"> & { title?: string; stdio: StdioServerConfig };

const STDIO_KEYS = ["type", "command", "args", "env", "cwd", "shared", "identityEnv", "title", "allowUsers"];
/** Keys of a remote server that mean nothing for a local one. */
const REMOTE_KEYS: Readonly<Record<string, string>> = {
  url: 'a local server is started with "command"; it has no URL',
  oauth: "the gateway signs no one in at a local server: it runs with the gateway's OS user, and the user's gateway sign-in is all it gets",
  auth: 'a local server gets no credentials over stdio: pass what it needs in "env"',
  headers: 'a local server is spoken to over stdio, without HTTP headers: pass what it needs in "env" or "args"',
  identityHeaders: 'a local server gets the user\'s identity as MCP_GATEWAY_USER with "identityEnv": true',
  allowOrgs: 'organisation membership is checked with the user\'s GitHub token, which a local server has not: use "allowUsers"',
};
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Set by the gateway itself with `identityEnv`: never from the file, where they would claim an identity. */
const IDENTITY_VARIABLES = ["MCP_GATEWAY_USER", "MCP_GATEWAY_CLIENT_ID"];
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
const MAX_ARGS = 1000;

/** An entry with `command`, or `"type": "stdio"`: a local server the gateway starts. */
export const isStdioEntry = (entry: Entry): boolean => entry.command !== undefined || entry.type === "stdio";

/** One local server's entry (docs/upstreams.md, stdio servers): no URL, no upstream auth; the gateway runs it. */
export function parseStdioEntry(ctx: Context, path: string, value: Entry): ParsedStdio {
  const remote = Object.keys(REMOTE_KEYS).find((key) => value[key] !== undefined);
  if (remote !== undefined) throw ctx.problem(`${path}.${remote} is not for a local (stdio) server: ${REMOTE_KEYS[remote]}`);
  knownKeys(ctx, path, value, STDIO_KEYS);
  if (value.type !== undefined && value.type !== "stdio") throw ctx.problem(`${path}.type must be "stdio" for a server with "command" (or be left out)`);
  const shared = flag(ctx, `${path}.shared`, value.shared);
  const identityEnv = flag(ctx, `${path}.identityEnv`, value.identityEnv);
  if (shared && identityEnv)
    throw ctx.problem(`${path}: "identityEnv" does not go with "shared": one process serves every user, so there is no one user to name`);
  const read = (where: string, raw: unknown): Template => {
    if (typeof raw !== "string" || raw.includes("\0")) throw ctx.problem(`${where} must be a string without NUL characters`);
    const template = parseTemplate(ctx, where, raw);
    if (shared && template.some((part) => typeof part !== "string"))
      throw ctx.problem(`${where}: {{userDir}} does not go with "shared": one process serves every user; give a fixed path`);
    return template;
  };
  const stdio: StdioServerConfig = {
    command: command(ctx, `${path}.command`, value.command),
    args: Object.freeze(args(ctx, `${path}.args`, value.args).map((arg, i) => read(`${path}.args[${i}]`, arg))),
    env: Object.freeze(environment(ctx, `${path}.env`, value.env, read)),
    ...(value.cwd === undefined ? {} : { cwd: workingDirectory(ctx, read(`${path}.cwd`, value.cwd)) }),
    shared,
    identityEnv,
  };
  return {
    ...(value.title === undefined ? {} : { title: title(ctx, `${path}.title`, value.title) }),
    resource: "",
    auth: "none",
    headers: Object.freeze({}),
    identityHeaders: false,
    allowUsers: allowList(ctx, `${path}.allowUsers`, value.allowUsers),
    allowOrgs: Object.freeze([]),
    stdio: Object.freeze(stdio),
  };
}

/**
 * A string cut into literal text and `{{userDir}}` placeholders before `${VAR}` expansion of the text, so a
 * variable whose value holds `{{userDir}}` stays literal. Any other `{{…}}` is a typo.
 */
export function parseTemplate(ctx: Context, path: string, raw: string): Template {
  const parts: (string | { placeholder: "userDir" })[] = [];
  let at = 0;
  for (const match of raw.matchAll(PLACEHOLDER)) {
    if (match[1] !== "userDir") throw ctx.problem(`${path} has the placeholder ${quote(match[0])}: the only one is {{userDir}}, the user's own directory`);
    if (match.index > at) parts.push(expand(ctx, path, raw.slice(at, match.index)));
    parts.push(Object.freeze({ placeholder: "userDir" as const }));
    at = match.index + match[0].length;
  }
  if (at < raw.length || parts.length === 0) parts.push(expand(ctx, path, raw.slice(at)));
  if (parts.some((part) => typeof part === "string" && part.includes("\0"))) throw ctx.problem(`${path} must not hold NUL characters`);
  return Object.freeze(parts);
}

/** The program, argv[0]: a bare name is found on PATH, a path is relative to the config file. Never a shell. */
function command(ctx: Context, path: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "")
    throw ctx.problem(`${path} is missing or empty: give the program to run, e.g. "command": "npx", with its arguments in "args"`);
  if (/\{\{[^{}]*\}\}/.test(value)) throw ctx.problem(`${path}: {{userDir}} goes in "args", "env" or "cwd", not in the command`);
  const program = expand(ctx, path, value);
  if (program.includes("\0")) throw ctx.problem(`${path} must not hold NUL characters`);
  if (/\s/.test(program) && !/[\\/]/.test(program))
    throw ctx.problem(`${path} is "${program}": no shell splits it, so give the program alone and its arguments in "args"`);
  return /[\\/]/.test(program) && !isAbsolute(program) ? resolve(ctx.baseDir, program) : program;
}

function args(ctx: Context, path: string, value: unknown): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_ARGS)
    throw ctx.problem(`${path} must be an array of at most ${MAX_ARGS} strings, e.g. ["-y", "@modelcontextprotocol/server-memory"]`);
  return value as unknown[];
}

function environment(ctx: Context, path: string, value: unknown, read: (where: string, raw: unknown) => Template): Record<string, Template> {
  if (value === undefined) return {};
  if (!isEntry(value))
    throw ctx.problem(`${path} must be an object of variable names and string values, e.g. { "MEMORY_FILE_PATH": "{{userDir}}/memory.jsonl" }`);
  const env: Record<string, Template> = {};
  for (const [name, raw] of Object.entries(value)) {
    const where = member(path, name);
    if (!ENV_NAME.test(name)) throw ctx.problem(`${where}: a variable name is letters, digits and "_", not starting with a digit`);
    if (IDENTITY_VARIABLES.includes(name)) throw ctx.problem(`${where}: the gateway sets ${name} itself, with "identityEnv": true`);
    env[name] = read(where, raw);
  }
  return env;
}

/** A relative `cwd` starts beside the config file; `{{userDir}}/…` is absolute already. */
function workingDirectory(ctx: Context, template: Template): Template {
  const first = template[0];
  return typeof first === "string" && !isAbsolute(first) ? Object.freeze([join(resolve(ctx.baseDir), first), ...template.slice(1)]) : template;
}

function flag(ctx: Context, path: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw ctx.problem(`${path} must be true or false`);
  return value;
}

/** `--stdio-*` and the environment every process inherits; the directory defaults to `<data-dir>/stdio`. */
export function parseStdioOptions(read: Reader, env: Readonly<Record<string, string | undefined>>): StdioConfig {
  const home = (dir: string) => resolve(dir === "~" || dir.startsWith("~/") ? join(env.HOME ?? homedir(), dir.slice(1)) : dir);
  const given = read.given("stdio-dir");
  return Object.freeze({
    dir: given === undefined ? join(home(read.value("data-dir")), "stdio") : home(given),
    idleTimeout: read.value("stdio-idle-timeout"),
    maxProcesses: read.value("stdio-max-processes"),
    maxPerUser: read.value("stdio-max-per-user"),
    environment: Object.freeze(inheritedEnvironment(env)),
  });
}
