import type { Config } from "../config/types.js";

/**
 * What the primary and its workers say over the cluster's IPC channel, a pipe no other process
 * reads: the configuration (with a generated password) travels here, never in the environment.
 */
export type ToWorker =
  /** Serve with this configuration as worker `slot` (1…N, kept by a replacement); `announce`: log what each upstream needs (the first worker, once). */
  | { type: "start"; config: Readonly<Config>; slot: number; announce: boolean }
  /** SIGTERM or SIGINT reached the primary: close within `graceMs`. */
  | { type: "shutdown"; graceMs: number };

export type ToPrimary =
  /** Listening for the configuration (sent first: a message before the listener would be lost). */
  | { type: "hello" }
  /** Listening; `banner` is the start-up banner, which the primary prints once for all. */
  | { type: "listening"; banner: string }
  /** Could not start (e.g. the port is taken): the primary says it once, not once per worker. */
  | { type: "failed"; message: string };

export const isMessage = <T extends { type: string }>(value: unknown): value is T =>
  typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
