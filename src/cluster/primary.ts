import cluster, { type Worker } from "node:cluster";
import type { Config } from "../config/types.js";
import { loadKeys } from "../crypto.js";
import type { Logger } from "../log.js";
import { systemClock } from "../clock.js";
import { openStore } from "../store/open.js";
import { isMessage, type ToPrimary, type ToWorker } from "./messages.js";
import { restartDelay } from "./restarts.js";

/** After the grace, workers get this long to close their stores and exit before SIGKILL. */
const EXIT_SLACK_MS = 1000;

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  delayMs: number;
  timer?: NodeJS.Timeout;
}

export interface Cluster {
  /** The workers' pids, in slot order. */
  pids(): number[];
  /** Ask every worker to close within `graceMs`, then kill those still running. */
  close(graceMs: number): Promise<void>;
}

/**
 * `--workers N` (N > 1): this process binds nothing itself but node:cluster's round-robin handle,
 * forks N workers that share the port, prints one banner once all listen, replaces a worker that
 * ends (backing off when they keep ending), and stops them all on close. The store is prepared
 * first (schema, master secret), so workers never race to create either. Rejects, once, with the
 * first worker's reason, when they cannot start at all (the port is taken).
 */
export async function startCluster(config: Readonly<Config>, io: { log: Logger; print: (text: string) => void }): Promise<Cluster> {
  await prepareStore(config, io.log);
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const slots: Slot[] = Array.from({ length: config.workers }, (_, index) => ({ index, startedAt: 0, delayMs: 0 }));
  let stopping = false;
  let starting = true;
  let listening = 0;
  const started = settleOnce<string>();
  const stopAll = async (graceMs: number): Promise<void> => {
    stopping = true;
    const live = slots.flatMap((slot) => (clearTimeout(slot.timer), slot.worker && !slot.worker.isDead() ? [slot.worker] : []));
    const exits = live.map((worker) => new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once("exit", () => resolve()))));
    for (const worker of live) tell(worker, { type: "shutdown", graceMs });
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs + EXIT_SLACK_MS).unref());
    await Promise.race([Promise.all(exits), deadline]);
    for (const worker of live) if (!worker.isDead()) worker.process.kill("SIGKILL");
    await Promise.all(exits);
  };

  const fork = (slot: Slot): void => {
    const worker = cluster.fork();
    Object.assign(slot, { worker, startedAt: Date.now() });
    worker.on("message", (message: unknown) => {
      if (!isMessage<ToPrimary>(message)) return;
      if (message.type === "hello") tell(worker, { type: "start", config, slot: slot.index + 1, announce: starting && slot.index === 0 });
      else if (message.type === "listening") onListening(slot, message.banner);
      else if (starting) started.reject(new Error(message.message));
      else io.log.error(`worker ${slot.index + 1} (pid ${worker.process.pid}) could not start: ${message.message}`);
    });
    worker.on("exit", (code, signal) => onExit(slot, worker, code ?? signal));
    worker.on("error", (error) => io.log.warn(`worker ${slot.index + 1} (pid ${worker.process.pid}): ${error.message}`)); // a message to one that just ended
  };
  const onListening = (slot: Slot, banner: string): void => {
    if (!starting) return io.log.info(`worker ${slot.index + 1} (pid ${slot.worker?.process.pid}) listening in place of the one that ended`);
    if (++listening === slots.length) started.resolve(banner);
  };
  const onExit = (slot: Slot, worker: Worker, how: number | string): void => {
    if (stopping || slot.worker !== worker) return;
    if (starting) return started.reject(new Error(`worker ${slot.index + 1} ended (${how}) before it listened`));
    slot.delayMs = restartDelay(slot.delayMs, Date.now() - slot.startedAt);
    io.log.warn(`worker ${slot.index + 1} (pid ${worker.process.pid}) ended (${how}): starting another in ${slot.delayMs} ms`);
    slot.timer = setTimeout(() => fork(slot), slot.delayMs);
  };

  slots.forEach(fork);
  let banner: string;
  try {
    banner = await started.promise;
  } catch (error) {
    await stopAll(0);
    throw error;
  }
  starting = false;
  const pids = () => slots.map((slot) => slot.worker?.process.pid ?? 0);
  io.print(`${banner}\n  Workers:                ${slots.length} processes sharing the port (pids ${pids().join(", ")}), each replaced if it ends`);
  return { pids, close: stopAll };
}

const tell = (worker: Worker, message: ToWorker): void => {
  if (worker.isConnected()) worker.send(message);
};

/** Open the store once before any worker: the schema (SQLite) and the generated master secret are created here, once. */
async function prepareStore(config: Readonly<Config>, log: Logger): Promise<void> {
  const store = await openStore(config.store, { clock: systemClock, log });
  try {
    await loadKeys(config, store);
  } finally {
    await store.close();
  }
}

/** A promise and its resolve and reject (Promise.withResolvers is Node 22). */
function settleOnce<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => ([resolve, reject] = [res, rej]));
  return { promise, resolve, reject };
}
