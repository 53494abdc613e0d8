/**
 * Child processes and temp dirs of one bench run, all removed on exit, on error and on Ctrl-C.
 * Children get the hard fd limit as their soft limit (the shell's `ulimit -n`, then exec).
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export function cleanup(): void {
  for (const child of children) if (running(child)) child.kill("SIGKILL");
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export function installCleanup(): void {
  process.once("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping every child process\n`);
      cleanup();
      process.exit(130);
    });
}

export const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  dirs.add(dir);
  return dir;
}

/** The hard limit on open files, which no unprivileged child may exceed (20000 on the reference machine). */
export const hardFdLimit = (): number => Number(spawnSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim()) || 1024;

/** `command args…` with the soft fd limit raised to the hard one; the pid is the command's own (exec). */
export function launch(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; stdio: StdioOptions }): ChildProcess {
  const script = 'ulimit -n "$0" 2>/dev/null; exec "$@"';
  const child = spawn("sh", ["-c", script, String(hardFdLimit()), command, ...args], { cwd: ROOT, env: opts.env ?? process.env, stdio: opts.stdio });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Stop a child and wait for it: `signal` first, SIGKILL if it has not exited after `graceMs`. */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** The first stdout line matching `pattern`; stdout keeps being drained afterwards so the pipe never blocks. */
export function firstLine(child: ChildProcess, pattern: RegExp, ms: number, describe: () => string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => fail(`nothing matching ${pattern} within ${ms} ms`), ms);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${why}\nstdout: ${seen.slice(-2000)}\n${describe()}`));
    };
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      if (seen.length < 100_000) seen += chunk;
      const match = seen.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before printing ${pattern}`));
  });
}

export { freePort } from "../test/support/processes.js";

/** Resident set size in KB, from /proc/<pid>/status. */
export function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** Sample RSS every `everyMs` until the returned function is called; it returns the samples (KB). */
export function sampleRss(pid: number, everyMs = 500): () => number[] {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(rssKb(pid)), everyMs);
  return () => {
    clearInterval(timer);
    return samples;
  };
}

/** Open file descriptors of a process. */
export const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `command` is on the PATH (Debian's nginx lives in /usr/sbin, often not on a user's PATH). */
export function which(command: string, extra: readonly string[] = []): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).stdout.trim();
  if (found) return found;
  return extra.find((path) => spawnSync("test", ["-x", path]).status === 0);
}
