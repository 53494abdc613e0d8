import { readFileSync } from "node:fs";
import { parseArgs, parseEnv } from "node:util";
import { ConfigError } from "./errors.js";
import { loadLogin } from "./login.js";
import { commandLineFlags, OPTIONS, optionReader, secretOnCommandLine, type Reader } from "./options.js";
import { parseStdioOptions } from "./stdio.js";
import { parseStore, parseWorkers } from "./store.js";
import type { Config } from "./types.js";
import { parseUpstreams } from "./upstreams.js";

type Env = Readonly<Record<string, string | undefined>>;

interface CommandLine {
  values: Record<string, string | string[] | boolean | undefined>;
  positionals: string[];
}

/** The process's own command line and environment: the one place they are read. */
export const loadProcessConfig = (): Readonly<Config> => loadConfig(process.argv.slice(2), process.env);

/** Parse argv, environment and env file once; throw ConfigError naming the flag and the fix. */
export function loadConfig(argv: readonly string[], env: Env): Readonly<Config> {
  if (argv[0] === "login" && (argv.includes("--help") || argv.includes("-h"))) return freeze({ command: "help" });
  if (argv[0] === "login") return freeze({ command: "login", deviceLogin: parseLogin(argv.slice(1)) });
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) return freeze({ command: "help" });
  if (values.version) return freeze({ command: "version" });
  const command = positionals[0] ?? "serve";
  if (command !== "serve" && command !== "demo" && command !== "hash-password" && command !== "revoke")
    throw new ConfigError(`unknown command "${command}": use "demo", "hash-password", "revoke", "login" or no command (see --help)`);
  if (positionals.length > 1) throw new ConfigError(`unexpected argument "${positionals[1]}" (see --help)`);
  const revoke = parseRevoke(command, values);
  if (command === "hash-password") return freeze({ command });

  const explicitEnvFile = (values["env-file"] as string | undefined) ?? env.MCP_GATEWAY_ENV_FILE;
  const fromFile = readEnvFile(explicitEnvFile ?? OPTIONS["env-file"].default, explicitEnvFile !== undefined);
  const read = optionReader(values, env, fromFile);
  return freeze({ command, ...(revoke ? { revoke } : {}), ...serveConfig(read, command === "demo", { ...fromFile, ...env }, env) });
}

/** Everything but the command: what `serve`, `demo` and `revoke` run with. */
function serveConfig(read: Reader, demo: boolean, env: Env, processEnv: Env): Omit<Config, "command" | "revoke"> {
  const port = read.value("port");
  const givenPublicUrl = read.given("public-url");
  const publicUrl = read.value("public-url", OPTIONS["public-url"].default.replace("<port>", String(port)));
  const upstreams = parseUpstreams(read, demo, publicUrl, env);
  const login = loadLogin(read);
  const secret = read.value("secret");
  const store = parseStore(read, demo, env.HOME);
  return {
    port,
    host: read.value("host"),
    publicUrl,
    loopbackNames: givenPublicUrl === undefined,
    upstreams,
    login,
    ...(secret === undefined ? {} : { secret }),
    previousSecrets: read.value("previous-secrets"),
    store,
    workers: parseWorkers(
      read,
      demo,
      store,
      upstreams.filter((upstream) => upstream.stdio).map((upstream) => upstream.name),
    ),
    trustProxy: read.value("trust-proxy"),
    registration: {
      redirectUriAllow: read.value("redirect-uri-allow"),
      maxClients: read.value("max-clients"),
      unusedClientTtl: read.value("unused-client-ttl"),
    },
    allowedOrigins: read.value("allowed-origins"),
    allowPrivateFetch: read.value("allow-private-fetch"),
    proxy: {
      upstreamTimeout: read.value("upstream-timeout"),
      sseHeartbeat: read.value("sse-heartbeat"),
      shutdownGrace: read.value("shutdown-grace"),
      maxStreamsPerGrant: read.value("max-streams-per-grant"),
      maxStreamsPerAddress: read.value("max-streams-per-address"),
    },
    stdio: parseStdioOptions(read, processEnv),
    accessTokenTtl: read.value("access-token-ttl"),
    refreshTokenTtl: read.value("refresh-token-ttl"),
    grantLifetime: read.value("grant-lifetime"),
  };
}

/** `revoke --user NAME --client ID`: at least one, and only with that command. */
function parseRevoke(command: string, values: CommandLine["values"]): Config["revoke"] {
  const given = (name: string) => ((values[name] as string[] | undefined) ?? []).map((v) => v.trim());
  const users = given("user");
  const clients = given("client");
  if (command !== "revoke") {
    if (users.length || clients.length) throw new ConfigError(`--user and --client are for the revoke command: mcp-oauth-gateway revoke --user NAME`);
    return undefined;
  }
  if (users.some((u) => !u) || clients.some((c) => !c)) throw new ConfigError("revoke: --user and --client need a non-empty value");
  if (!users.length && !clients.length) throw new ConfigError("revoke needs --user NAME or --client ID (each repeatable): whose grants to end");
  return Object.freeze({ users: Object.freeze(users), clients: Object.freeze(clients) });
}

/** `login <mcp-url> [--client-id ID] [--scope S] [--write-config FILE] [--name NAME]`: a client command, none of the gateway's options. */
function parseLogin(argv: readonly string[]): NonNullable<Config["deviceLogin"]> {
  const options = {
    "client-id": { type: "string" },
    scope: { type: "string" },
    "write-config": { type: "string" },
    name: { type: "string" },
  } as const;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ConfigError(`login: ${(error as Error).message.split("\n")[0]} (see --help)`);
  }
  const { values, positionals } = parsed;
  const [url, extra] = positionals;
  if (!url) throw new ConfigError("login needs the MCP server's URL: mcp-oauth-gateway login https://gateway.example.com/mcp");
  if (extra !== undefined) throw new ConfigError(`login: unexpected argument "${extra}" (see --help)`);
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new ConfigError(`login: "${url}" is not an http(s) URL`);
  if (values.name !== undefined && values["write-config"] === undefined)
    throw new ConfigError("login: --name names the entry --write-config writes; give --write-config FILE");
  return Object.freeze({
    url,
    ...(values["client-id"] ? { clientId: values["client-id"] } : {}),
    ...(values.scope ? { scope: values.scope } : {}),
    ...(values["write-config"] ? { writeConfig: values["write-config"] } : {}),
    ...(values.name ? { name: values.name } : {}),
  });
}

function parseCommandLine(argv: readonly string[]): CommandLine {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    ...Object.fromEntries(commandLineFlags().map(([flag, o]) => [flag, { type: "string" as const, multiple: o.multiple ?? false }])),
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
    user: { type: "string", multiple: true },
    client: { type: "string", multiple: true },
  };
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: values as CommandLine["values"], positionals };
  } catch (error) {
    const secret = secretOnCommandLine(argv);
    if (secret) throw new ConfigError(`--${secret[0]} is not a flag: set ${secret[1].env} in the environment or the env file, where \`ps\` cannot see it`);
    const { code, message } = error as { code?: string; message: string };
    const option = /'(-[^' ]+)/.exec(message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE")
      throw new ConfigError(`${option} needs a value: write ${option} <value> (or ${option}=<value> for a value that starts with "-")`);
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new ConfigError(`unknown option ${option}: see --help for the options`);
    throw new ConfigError(`${message.split("\n")[0]} (see --help)`);
  }
}

function readEnvFile(path: string, explicit: boolean): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    if (explicit) throw new ConfigError(`--env-file ${path} cannot be read: give a readable file or drop the flag`);
    return {};
  }
  return parseEnv(text) as Record<string, string>;
}

function freeze<T extends Partial<Config>>(config: T): Readonly<Config> {
  if (config.login) {
    config.login.users.forEach((u) => Object.freeze(u));
    Object.freeze(config.login.users);
    Object.freeze(config.login);
  }
  if (config.store) Object.freeze(config.store);
  if (config.previousSecrets) Object.freeze(config.previousSecrets);
  if (config.registration) Object.freeze(config.registration);
  if (config.allowedOrigins) Object.freeze(config.allowedOrigins);
  if (config.proxy) Object.freeze(config.proxy);
  return Object.freeze(config) as unknown as Readonly<Config>;
}
