import type { ChildProcess } from "node:child_process";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../log.js";
import type { StdioChild } from "./child.js";

/** Why a process ended: ended by the gateway (`idle`, `shutdown`), or on its own (`exited` with 0, `crashed`). */
export type EndReason = "idle" | "shutdown" | "exited" | "crashed";

export interface Ended {
  reason: EndReason;
  /** Milliseconds from spawn to exit. */
  ranMs: number;
}

/** What to start: argv only, the whole environment, the working directory. */
export interface Spawn {
  server: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface ProcessDeps {
  log: Logger;
  clock: Clock;
  idleTimeoutMs: number;
  /** Called once, when the gateway starts ending the process (idle, shutdown): it takes no new work. */
  ending: () => void;
  /** Called once, after `onexit`. */
  ended: (ended: Ended) => void;
}

/** Longer stderr lines are cut: a server cannot flood one log line. */
export const MAX_STDERR_LINE = 1000;
/** Stderr lines of one process logged per second: past them, lines are counted and one line says how many were dropped. */
export const STDERR_LINES_PER_SECOND = 100;

/**
 * One stdio server process, started through the MCP SDK's StdioClientTransport (no shell, stderr piped,
 * the environment given whole): its stdout messages, its stderr in the log, its idle timer and its end.
 */
export class StdioProcess implements StdioChild {
  onmessage?: (message: JSONRPCMessage) => void;
  onexit?: (reason: string) => void;
  readonly #transport: StdioClientTransport;
  readonly #spawn: Spawn;
  readonly #deps: ProcessDeps;
  #pid: number | undefined;
  #startedAt = 0;
  #holds = 0;
  #idle?: NodeJS.Timeout;
  #ending?: "idle" | "shutdown";
  #status = "";
  #exited = false;
  readonly #done: Promise<void>;
  #finish!: () => void;

  constructor(
    spawn: Spawn,
    readonly generation: number,
    deps: ProcessDeps,
  ) {
    this.#spawn = spawn;
    this.#deps = deps;
    this.#done = new Promise((resolve) => (this.#finish = resolve));
    const { command, args, env, cwd } = spawn;
    this.#transport = new StdioClientTransport({ command, args, env, cwd, stderr: "pipe" });
    this.#transport.onmessage = (message) => this.onmessage?.(message);
    this.#transport.onerror = (error) => deps.log.warn(`stdio ${spawn.server}: ${cut(error.message)}`);
    this.#transport.onclose = () => this.#closed();
    const stderr = budgeted(deps.clock, (line) => deps.log.info(`stdio ${spawn.server}: ${line}`));
    logLines(this.#transport, stderr.line, stderr.ended);
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  /** Spawns the process; rejects when it cannot start (no such program, no such directory). */
  async start(): Promise<void> {
    try {
      await this.#transport.start();
    } catch (error) {
      this.#exited = true; // its close event follows: nothing ran, nothing to report twice
      throw error;
    }
    this.#startedAt = this.#deps.clock.now();
    this.#pid = this.#transport.pid ?? undefined;
    // The transport reports neither exit code nor signal; its ChildProcess does
    const child = (this.#transport as unknown as { _process?: ChildProcess })._process;
    child?.once("exit", (code, signal) => (this.#status = signal ? `signal ${signal}` : `code ${code}`));
    this.#idleAfterRelease();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#exited) return Promise.reject(new Error(`The stdio server ${this.#spawn.server} has exited`));
    return this.#transport.send(message);
  }

  hold(): () => void {
    this.#holds++;
    clearTimeout(this.#idle);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      this.#idleAfterRelease();
    };
  }

  /** MCP stdio shutdown: stdin closed, SIGTERM after 2 s, SIGKILL 2 s later (the SDK's close); resolves once it has exited. */
  end(reason: "idle" | "shutdown"): Promise<void> {
    if (!this.#ending && !this.#exited) this.#deps.ending();
    this.#ending ??= reason;
    clearTimeout(this.#idle);
    if (!this.#exited) void this.#transport.close();
    return this.#done;
  }

  /** SIGKILL now, synchronously (the gateway's process is exiting). */
  kill(): void {
    if (this.#exited || this.#pid === undefined) return;
    try {
      process.kill(this.#pid, "SIGKILL");
    } catch {
      // gone already
    }
  }

  #idleAfterRelease(): void {
    if (this.#holds > 0 || this.#exited || this.#ending) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => void this.end("idle"), this.#deps.idleTimeoutMs);
    this.#idle.unref();
  }

  #closed(): void {
    if (this.#exited) return;
    this.#exited = true;
    clearTimeout(this.#idle);
    const ranMs = this.#startedAt ? this.#deps.clock.now() - this.#startedAt : 0;
    const reason: EndReason = this.#ending ?? (this.#status === "code 0" ? "exited" : "crashed");
    const line = `stdio ${this.#spawn.server}: pid ${this.#pid ?? "?"} ended (${reason}) with ${this.#status || "no exit status"} after ${(ranMs / 1000).toFixed(1)}s`;
    if (reason === "crashed") this.#deps.log.warn(line);
    else this.#deps.log.info(line);
    try {
      this.onexit?.(reason);
    } finally {
      this.#deps.ended({ reason, ranMs });
      this.#finish();
    }
  }
}

/** Each stderr line to `write`, cut at MAX_STDERR_LINE; a line longer than that is cut, its rest dropped. */
function logLines(transport: StdioClientTransport, write: (line: string) => void, ended: () => void): void {
  let pending = "";
  let dropping = false;
  transport.stderr?.on("data", (chunk: Buffer) => {
    const lines = (pending + chunk.toString("utf8")).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (!dropping) write(cut(line.replace(/\r$/, "")));
      dropping = false;
    }
    if (pending.length > MAX_STDERR_LINE) {
      if (!dropping) write(cut(pending));
      dropping = true;
      pending = "";
    }
  });
  transport.stderr?.on("end", () => {
    if (pending && !dropping) write(cut(pending));
    ended();
  });
}

/**
 * `write`, at most STDERR_LINES_PER_SECOND lines a second: the rest counted, and said once the next
 * second lets a line through, or when stderr ends.
 */
function budgeted(clock: Clock, write: (line: string) => void): { line: (line: string) => void; ended: () => void } {
  let windowStart = -Infinity;
  let written = 0;
  let dropped = 0;
  const sayDropped = () => {
    if (dropped) write(`${dropped} stderr line(s) dropped (over ${STDERR_LINES_PER_SECOND} a second)`);
    dropped = 0;
  };
  const line = (text: string) => {
    const now = clock.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      written = 0;
      sayDropped();
    }
    if (written++ < STDERR_LINES_PER_SECOND) write(text);
    else dropped++;
  };
  return { line, ended: sayDropped };
}

const cut = (line: string): string => (line.length > MAX_STDERR_LINE ? `${line.slice(0, MAX_STDERR_LINE)}…` : line);
