import type { Config } from "../config/types.js";
import type { Gateway } from "../gateway.js";
import { createLogger } from "../log.js";
import { serve, startupBanner } from "../serve.js";
import { isMessage, type ToPrimary, type ToWorker } from "./messages.js";

const send = (message: ToPrimary, then: () => void = () => {}): void => void process.send?.(message, undefined, undefined, then);

/**
 * A worker of `--workers N`: waits for the primary's configuration, serves it on the shared port
 * with caches of its own, and closes on the primary's word or on a signal of its own (a process
 * manager signalling the whole group). A worker whose primary is gone exits (node:cluster). Its log
 * lines say `[worker <slot> pid <pid>]`.
 */
export function runWorker(): void {
  let running: Promise<Gateway> | undefined;
  let closing = false;
  const close = (graceMs: number): void => {
    if (closing) return;
    closing = true;
    void (running ?? Promise.reject(new Error("not started")))
      .then((gateway) => gateway.close(graceMs))
      .catch(() => {})
      .finally(() => process.exit(0));
  };
  let graceMs = 0;
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => close(graceMs));
  process.on("message", (message: unknown) => {
    if (!isMessage<ToWorker>(message)) return;
    if (message.type === "shutdown") return close(message.graceMs);
    if (running) return;
    const { config, slot, announce } = message;
    graceMs = config.proxy.shutdownGrace * 1000;
    running = serve(config, createLogger(undefined, `worker ${slot} pid ${process.pid}`), announce);
    running.then(
      (gateway) => send({ type: "listening", banner: startupBanner(config, gateway) }),
      (error: unknown) => send({ type: "failed", message: startError(config, error as NodeJS.ErrnoException) }, () => process.exit(1)),
    );
  });
  send({ type: "hello" });
}

/** Why a worker cannot start, said once by the primary for all: the port taken is the usual reason. */
function startError(config: Readonly<Config>, error: NodeJS.ErrnoException): string {
  if (error.code !== "EADDRINUSE") return error.message;
  return `port ${config.port} on ${config.host} is in use by another process (${error.message}): stop it or choose another --port`;
}
