#!/usr/bin/env node
import "./pretenuring.js"; // first: before the modules below allocate
import cluster from "node:cluster";
import { startCluster } from "./cluster/primary.js";
import { runWorker } from "./cluster/worker.js";
import { ConfigError } from "./config/errors.js";
import { helpText } from "./config/options.js";
import { loadProcessConfig } from "./config/load.js";
import type { Config } from "./config/types.js";
import { startDemo } from "./demo.js";
import { createLogger, type Logger } from "./log.js";
import { hashPassword } from "./login/passwords.js";
import { loginCommand } from "./cli/run-login.js";
import { revokeCommand } from "./revoke.js";
import { serve, startupBanner, version } from "./serve.js";

async function main(): Promise<void> {
  if (cluster.isWorker) return runWorker(); // --workers N: the configuration comes from the primary
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
  const running =
    config.command === "demo" ? startDemo(config, { log, print }) : config.workers > 1 ? startCluster(config, { log, print }) : serveOne(config, log);
  const graceMs = config.proxy.shutdownGrace * 1000;
  shutdown = () => void running.then((r) => r.close(graceMs)).finally(() => process.exit(0));
  await running;
}

async function serveOne(config: Readonly<Config>, log: Logger) {
  const gateway = await serve(config, log);
  print(startupBanner(config, gateway));
  return gateway;
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
