#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { ConfigError } from "./config/errors.js";
import { helpText } from "./config/options.js";
import { loadProcessConfig } from "./config/load.js";
import type { Config } from "./config/types.js";
import { startDemo } from "./demo.js";
import type { PublicOrigins } from "./origins.js";
import { startGateway, type Gateway } from "./gateway.js";
import { createLogger } from "./log.js";
import { hashPassword } from "./login/passwords.js";
import { describeLogin } from "./login/users.js";
import { loginCommand } from "./cli/run-login.js";
import { revokeCommand } from "./revoke.js";
import { describeStore } from "./store/open.js";
import { importSigningKey } from "./upstream/client-auth.js";

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadProcessConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mcp-oauth-gateway: ${error.message}\n`);
    process.exit(2);
  }
  if (config.command === "help") return void process.stdout.write(`${helpText()}\n`);
  if (config.command === "version") return void process.stdout.write(`${version}\n`);
  if (config.command === "hash-password") return hashPasswordCommand();
  if (config.command === "login") {
    const { code, text } = await loginCommand(config.deviceLogin!);
    if (text) (code === 0 ? process.stdout : process.stderr).write(`${code === 0 ? "" : "mcp-oauth-gateway: "}${text}\n`);
    process.exit(code);
  }

  const log = createLogger();
  if (config.command === "revoke") {
    const { code, text } = await revokeCommand(config, log);
    (code === 0 ? process.stdout : process.stderr).write(`${code === 0 ? "" : "mcp-oauth-gateway: "}${text}\n`);
    process.exit(code);
  }
  let shutdown = (): void => process.exit(0);
  // Installed before anything listens, so a signal at any moment shuts down cleanly; a second one cuts the grace short.
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => {
      log.info(`${signal}: shutting down`);
      shutdown();
      shutdown = () => process.exit(0);
    });
  const running = config.command === "demo" ? startDemo(config, { log, print }) : serve(config, log);
  const graceMs = config.proxy.shutdownGrace * 1000;
  shutdown = () => void running.then((r) => r.close(graceMs)).finally(() => process.exit(0));
  await running;
}

async function serve(config: Readonly<Config>, log: ReturnType<typeof createLogger>): Promise<Gateway> {
  const gateway = await startGateway(config, { log });
  print(startupBanner(config, gateway));
  for (const mount of gateway.mounts.all) {
    if (mount.config.privateKey)
      importSigningKey(mount.config.privateKey).then(
        ({ publicJwk }) =>
          log.info(`${mount.label}: private_key_jwt with the key whose public JWK is ${JSON.stringify(publicJwk)} (register it at the upstream with this kid)`),
        (error: unknown) => log.error(`${mount.label}: the private key cannot be used`, error),
      );
    mount.describe().then(
      (how) => log.info(`${mount.label}: ${how}`),
      (error: unknown) => log.warn(`${mount.label}: discovery failed, will retry on first use: ${(error as Error).message}`),
    );
  }
  return gateway;
}

/** What an operator needs on start: the URL for clients, the callback to register upstream, the login. */
export function startupBanner(config: Readonly<Config>, gateway: Pick<Gateway, "listenUrl" | "keySource" | "mounts">): string {
  const login = describeLogin(config.login);
  return [
    `mcp-oauth-gateway ${version} listening on ${gateway.listenUrl}`,
    ...gateway.mounts.describe(),
    ...loopbackNames(gateway.mounts.origins),
    `  Gateway login:          ${login.login}`,
    ...(login.password === undefined ? [] : [`  Gateway password:       ${login.password}`]),
    `  State:                  ${describeStore(config.store)}`,
    `  Token keys:             ${gateway.keySource === "environment" ? "from MCP_GATEWAY_SECRET" : "master secret generated once and kept in the store"}${config.previousSecrets.length ? ` (+${config.previousSecrets.length} previous, verify only)` : ""}`,
  ].join("\n");
}

/** The aliases of the canonical name (src/origins.ts), when there are any. */
function loopbackNames(origins: PublicOrigins): string[] {
  const aliases = origins.all.slice(1).map((origin) => new URL(origin).hostname);
  return aliases.length ? [`  Loopback names:         ${aliases.join(" and ")} work in place of localhost in these URLs`] : [];
}

const print = (text: string) => process.stdout.write(`${text}\n`);

/** `mcp-oauth-gateway hash-password`: one line from stdin in, its scrypt hash out. */
async function hashPasswordCommand(): Promise<void> {
  if (process.stdin.isTTY) process.stderr.write("Password (the input is shown): ");
  const password = await firstLine(process.stdin);
  if (!password) {
    process.stderr.write("mcp-oauth-gateway: hash-password read no password: pipe or type one line\n");
    process.exit(2);
  }
  print(await hashPassword(password));
}

async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of input) {
    text += String(chunk);
    if (text.includes("\n")) break;
  }
  return text.split(/\r?\n/)[0] ?? "";
}

main().catch((error: unknown) => {
  process.stderr.write(`mcp-oauth-gateway: ${(error as Error).message}\n`);
  process.exit(1);
});
