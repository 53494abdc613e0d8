import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { isEntry, knownKeys, quote, type Context } from "./entry.js";
import { ConfigError } from "./errors.js";
import { parseEntry } from "./server.js";
import type { UpstreamConfig } from "./types.js";
import { mcpPath } from "../paths.js";

type Env = Readonly<Record<string, string | undefined>>;

const MAX_SERVERS = 50;
const SERVER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TOP_KEYS = ["mcpServers", "$schema"];

/** Read the `--config` file; every problem is a ConfigError that never shows a secret. */
export function readUpstreamsFile(path: string, env: Env, publicUrl: string): UpstreamConfig[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`--config ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"}): give the path of a readable JSON file`);
  }
  return parseUpstreamsFile(text, path, env, publicUrl);
}

/** The upstreams of a config file's text, each frozen; `source` names the file in messages. */
export function parseUpstreamsFile(text: string, source: string, env: Env, publicUrl: string): UpstreamConfig[] {
  const ctx: Context = {
    name: (path) => path,
    problem: (message) => new ConfigError(`${source}: ${message}`),
    env,
    baseDir: dirname(source),
    publicUrl,
  };
  const file = parseJson(ctx, text);
  if (!isEntry(file)) throw ctx.problem(`the file must hold one JSON object: { "mcpServers": { "<name>": { "url": "https://…" } } }`);
  knownKeys(ctx, "the top level", file, TOP_KEYS);
  if (file.$schema !== undefined && typeof file.$schema !== "string") throw ctx.problem("$schema must be a string (the path or URL of gateway.schema.json)");
  const servers = file.mcpServers;
  if (!isEntry(servers))
    throw ctx.problem(`mcpServers must be an object of servers by name, e.g. "mcpServers": { "github": { "url": "https://api.githubcopilot.com/mcp/" } }`);
  const names = Object.keys(servers);
  if (names.length < 1 || names.length > MAX_SERVERS) throw ctx.problem(`mcpServers holds ${names.length} servers: give 1 to ${MAX_SERVERS}`);
  return names.map((name) => server(ctx, name, servers[name]));
}

function server(ctx: Context, name: string, value: unknown): UpstreamConfig {
  if (!SERVER_NAME.test(name))
    throw ctx.problem(`mcpServers.${quote(name)}: a server name is 1-63 lowercase letters, digits, "-" or "_" (it becomes the path /mcp/<name>)`);
  const path = `mcpServers.${name}`;
  if (!isEntry(value)) throw ctx.problem(`${path} must be an object such as { "url": "https://example.com/mcp" }`);
  const { title, ...entry } = parseEntry(ctx, path, value);
  return Object.freeze({ name, path: mcpPath(name), title: title ?? name, ...entry });
}

function parseJson(ctx: Context, text: string): unknown {
  const body = text.replace(/^\uFEFF/, "");
  try {
    return JSON.parse(body);
  } catch (error) {
    const { message } = error as Error;
    const at = jsonErrorPosition(body, message);
    const where = at === undefined ? "" : ` at line ${body.slice(0, at).split("\n").length}, column ${at - body.lastIndexOf("\n", at - 1)}`;
    // V8 quotes the text around an unexpected token, which may be a secret
    const reason = /^Unexpected token|"/.test(message) ? "unexpected character" : uncapitalise(message.replace(/( in JSON)? at position.*$/s, ""));
    throw ctx.problem(`not valid JSON${where}: ${reason}`);
  }
}

/** Where JSON.parse gave up; for an unexpected token V8 names no position, so find the shortest prefix that fails the same way. */
function jsonErrorPosition(text: string, message: string): number | undefined {
  const at = / at position (\d+)/.exec(message);
  if (at) return Number(at[1]);
  if (message.startsWith("Unexpected end")) return text.length;
  if (!message.startsWith("Unexpected token")) return undefined;
  let [low, high] = [1, text.length];
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (failsOnToken(text.slice(0, middle))) high = middle;
    else low = middle + 1;
  }
  return low - 1;
}

function failsOnToken(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch (error) {
    return (error as Error).message.startsWith("Unexpected token");
  }
}

const uncapitalise = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);
