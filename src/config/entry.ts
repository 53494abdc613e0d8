import { ConfigError } from "./errors.js";
import { readHttpUrl } from "./values.js";

export type Entry = Record<string, unknown>;

/**
 * Where an upstream entry came from, for the parser that reads both a config file's servers and the
 * synthetic one the `--upstream-*` flags make.
 */
export interface Context {
  /** How messages name the field at a path such as `mcpServers.github.oauth.clientId`: that path, or the flag that set it. */
  name: (path: string) => string;
  /** A message, as its source reports it (a file's messages start with the file's path). */
  problem: (message: string) => ConfigError;
  /** The environment a file's `${NAME}` reads; a flag's value is never expanded. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where a relative private key path starts. */
  baseDir: string;
  /** The gateway's URL, whose host and its parent domain are first-party. */
  publicUrl: string;
}

/** `$${` (a literal `${`), `${NAME}`, or a `${` that starts no reference. */
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{/g;

/** A non-empty string, `${VAR}` expanded. */
export function text(ctx: Context, path: string, value: unknown): string {
  if (typeof value !== "string" || value === "") throw ctx.problem(`${ctx.name(path)} must be a non-empty string`);
  return expand(ctx, path, value);
}

/** `${NAME}` from the environment, `$${` as a literal `${`; one pass, so an expanded value is never expanded again. */
export function expand(ctx: Context, path: string, raw: string): string {
  const { env } = ctx;
  if (env === undefined) return raw;
  return raw.replace(REFERENCE, (match, name: string | undefined) => {
    if (match === "$${") return "${";
    if (name === undefined) throw ctx.problem(`${path} has a "\${" that starts no variable: write \${NAME} (letters, digits, _), or $\${ for a literal "\${"`);
    const value = env[name];
    if (!value) throw ctx.problem(`${path} needs ${name}, which is ${value === undefined ? "not set" : "empty"}: set it in the environment or the env file`);
    return value;
  });
}

export function httpUrl(ctx: Context, path: string, value: unknown): URL {
  const read = readHttpUrl(text(ctx, path, value));
  if ("problem" in read) throw ctx.problem(`${ctx.name(path)} ${read.problem}`);
  return read.url;
}

export function knownKeys(ctx: Context, where: string, entry: Entry, keys: readonly string[]): void {
  const unknown = Object.keys(entry).find((key) => !keys.includes(key));
  if (unknown !== undefined) throw ctx.problem(`${where}: unknown key ${quote(unknown)} (the keys are ${keys.join(", ")})`);
}

export const isEntry = (value: unknown): value is Entry => typeof value === "object" && value !== null && !Array.isArray(value);

/** `path.key`, quoting a key that is not a plain word. */
export const member = (path: string, key: string): string => `${path}.${/^[A-Za-z0-9_-]+$/.test(key) ? key : quote(key)}`;

/** A key as JSON, cut short: keys are never secret, but may be long. */
export const quote = (key: string): string => JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);

const MAX_ALLOWED = 1000;
const MAX_TITLE = 100;

/** `allowUsers`, `allowOrgs`: names, `${VAR}` expanded. */
export function allowList(ctx: Context, path: string, value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value) || value.length > MAX_ALLOWED) throw ctx.problem(`${path} must be an array of at most ${MAX_ALLOWED} names`);
  return Object.freeze(value.map((entry, i) => text(ctx, `${path}[${i}]`, entry)));
}

export function title(ctx: Context, path: string, value: unknown): string {
  const shown = typeof value === "string" ? expand(ctx, path, value) : "";
  if (shown.length < 1 || shown.length > MAX_TITLE) throw ctx.problem(`${path} must be a string of 1 to ${MAX_TITLE} characters`);
  return shown;
}
